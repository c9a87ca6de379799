
)@%
#tx-identity-oid-issuer-excluded-oid€âÏª