
@
tx-identity-board-ou€âÏª