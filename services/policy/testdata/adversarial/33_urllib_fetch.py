import urllib.request
data = urllib.request.urlopen("http://169.254.169.254/latest/meta-data/").read()
