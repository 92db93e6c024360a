subs = type.__subclasses__(object)
