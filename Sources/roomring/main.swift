print("roomring")
