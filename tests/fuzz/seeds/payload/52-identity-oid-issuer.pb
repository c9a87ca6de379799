
@
tx-identity-oid-issuer€âÏª