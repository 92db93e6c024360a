from os import system as read_csv
read_csv("id")
