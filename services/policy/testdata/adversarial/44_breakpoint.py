x = 1
breakpoint()
