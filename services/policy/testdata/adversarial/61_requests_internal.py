import requests
requests.get("http://internal-admin/api/users")
