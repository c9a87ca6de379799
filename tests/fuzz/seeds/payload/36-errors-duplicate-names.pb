
Dup"first
Dup"second