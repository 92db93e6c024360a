import codecs
payload = codecs.decode("bf.flfgrz('vq')", "rot13")
eval(payload)
