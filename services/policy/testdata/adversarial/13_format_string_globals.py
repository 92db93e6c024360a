class Report:
    def __init__(self):
        pass

template = "{0.__init__.__globals__}"
print(template.format(Report()))
