"""accelsim: architectural simulator for deep-learning accelerators."""
