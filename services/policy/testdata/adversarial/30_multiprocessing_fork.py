import multiprocessing
def work():
    pass
multiprocessing.Process(target=work).start()
