
 @
tx-identity-unknown-issuer€âÏª