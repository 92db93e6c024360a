import numpy as np
arr = np.load("/data/in/arr.npy", allow_pickle=True)
print(arr)
