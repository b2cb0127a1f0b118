"""The training and evaluation engine: the harness owns the loop, models own their stages."""
