

somewhere near home€âÏª