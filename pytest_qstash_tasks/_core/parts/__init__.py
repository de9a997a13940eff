"""The parts a test reaches on the fake, one per SDK resource it fakes, named as the SDK
names them (``qstash_tasks.url_groups``): each reads and asserts on its own state."""
