import subprocess
subprocess.run(["ls", "-la", "/"], check=True)
