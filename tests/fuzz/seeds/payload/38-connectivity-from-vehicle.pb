

SPOOFEDVIN
veh-conn-1"─Бо╙*cellular