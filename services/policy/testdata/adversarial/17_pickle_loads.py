import pickle
with open("/data/in/model.pkl", "rb") as f:
    obj = pickle.load(f)
