
@
tx-identity-dots-in-cn€âÏª