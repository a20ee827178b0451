"""``python -m derain_zoo.weights [list | export ...]``: the trainer's door to exporting shipped weights."""

from derain_zoo.weights.command import main

main()
