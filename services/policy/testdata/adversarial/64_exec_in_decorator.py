run = exec
@run
def payload():
    pass
