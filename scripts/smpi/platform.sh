#!/usr/bin/env bash
# Writes a SimGrid platform and its hostfile for R ranks.
# Usage: scripts/smpi/platform.sh cluster|here RANKS DIR
#   cluster: ceil(R/32) nodes of 32 cores at 1 Gflop/s each (the rate the
#            injected costs are charged at), linked by 10 Gbps, 1 us links
#            through one switch; ranks fill the nodes in order (rank 0 and
#            31 workers on node-0). Inside a node messages cross a loopback
#            of 0.5 us and 80 Gbps (shared memory, as Open MPI's vader here).
#   here:    this machine: one node of 2 cores, the same loopback, every
#            rank on it (for the calibration against real runs).
# Prints the platform file's path; the hostfile is DIR/hostfile-R.
set -euo pipefail
kind=$1 ranks=$2 dir=$3
mkdir -p "$dir"
if [ "$kind" = here ]; then
  nodes=1 cores=2
else
  cores=32 nodes=$(( (ranks + cores - 1) / cores ))
fi
plat="$dir/platform-$kind-$ranks.xml"
cat > "$plat" <<XML
<?xml version='1.0'?>
<!DOCTYPE platform SYSTEM "https://simgrid.org/simgrid.dtd">
<platform version="4.1">
  <cluster id="c" prefix="node-" radical="0-$((nodes - 1))" suffix=""
           speed="1Gf" core="$cores" bw="10Gbps" lat="1us"
           loopback_bw="80Gbps" loopback_lat="0.5us"/>
</platform>
XML
hf="$dir/hostfile-$ranks"
: > "$hf"
left=$ranks
for ((i = 0; i < nodes; i++)); do
  n=$(( left < 32 ? left : 32 ))
  [ "$kind" = here ] && n=$ranks
  echo "node-$i:$n" >> "$hf"
  left=$(( left - n ))
done
echo "$plat"
