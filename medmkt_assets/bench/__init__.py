"""`make bench`: the whole pipeline on generated data at several sizes, measured by the OS."""
