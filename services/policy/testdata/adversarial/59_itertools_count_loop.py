import itertools
for i in itertools.count():
    print(i)
