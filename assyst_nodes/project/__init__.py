"""Project layer: storage of structure sets."""
