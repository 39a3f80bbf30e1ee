#!/bin/sh
# The genesis ceremony of the compose demo, done in one place: N validator keys, a genesis
# naming them (and an authority key for namespace delegation), every validator's genesis vote,
# and each validator's ledger created from a quorum of the votes (spec/consensus.md).
#
# In production each validator makes its key and its vote on its own machine and only the
# public votes travel; here one init container holds every key, which is fine for a demo only.
#
#   KEYS=/keys       v1.key .. vN.key, authority.json (0600, owner uid 10001)
#   GENESIS=/genesis genesis.json, votes.json (public: followers read the genesis)
#   DATA=/validators v1 .. vN: the validators' data volumes
#
# Idempotent: a cluster with a genesis already is left alone.
set -eu

N=${VALIDATORS:-4}
KEYS=${KEYS:-/keys}
GENESIS=${GENESIS:-/genesis}
DATA=${DATA:-/validators}
CHAIN=${CHAIN_ID:-sparkid-compose}
OWNER=${OWNER_UID:-10001}

if [ -f "$GENESIS/genesis.json" ]; then
    echo "the cluster has a genesis already: nothing to do"
    exit 0
fi
mkdir -p "$GENESIS" "$DATA"
umask 077
mkdir -p "$KEYS"

field() { sed -n "s/.*\"$1\": *\"\([^\"]*\)\".*/\1/p" "$2"; }

validators=""
for i in $(seq 1 "$N"); do
    sparkid keygen > "$KEYS/v$i.json"
    field privateKey "$KEYS/v$i.json" > "$KEYS/v$i.key"
    validators="$validators${validators:+,}\"$(field publicKeyHex "$KEYS/v$i.json")\""
done
sparkid keygen > "$KEYS/authority.json"
authority=$(field bid "$KEYS/authority.json")

umask 022
cat > "$GENESIS/genesis.json" <<JSON
{"chainId": "$CHAIN", "time": $(date +%s), "validators": [$validators], "authority": "$authority"}
JSON

votes=""
for i in $(seq 1 "$N"); do
    vote=$(sparkid ledger genesis-vote --genesis "$GENESIS/genesis.json" --validator-key "$KEYS/v$i.key")
    votes="$votes${votes:+,}$vote"
done
echo "[$votes]" > "$GENESIS/votes.json"

for i in $(seq 1 "$N"); do
    sparkid ledger init --data "$DATA/v$i" --genesis "$GENESIS/genesis.json" --votes "$GENESIS/votes.json"
done

chown -R "$OWNER:$OWNER" "$KEYS" "$GENESIS" "$DATA"
echo "cluster $CHAIN: $N validators, genesis in $GENESIS/genesis.json"
