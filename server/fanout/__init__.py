"""Who gets which bytes each tick, and the processes that write them."""
