
can/bus
k<v>"x