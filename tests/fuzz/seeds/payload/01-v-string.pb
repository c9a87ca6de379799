
@

My Tesla
D
2024.8.7 abcdef€âÏª