import os
mods = [os, os.path]
mods[0].system("id")
