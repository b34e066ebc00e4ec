#!/bin/bash
# Design A matrix under Open MPI 4.1.4
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
for tr in vader tcp; do
 [ $tr = tcp ] && MCA="--mca btl self,tcp" || MCA=""
 for np in 2 3; do
  for m in normal exit segv abort touch touchexit; do
    out=$(timeout 120 mpirun --oversubscribe $MCA -np $np ./ft_ompi $m 200 2>&1); rc=$?
    echo "== ompi $tr np=$np mode=$m rc=$rc"; echo "$out" | sed 's/^/   /'
  done
  out=$(timeout 180 mpirun --oversubscribe $MCA -np $np ./ft_ompi mix 1000 0 h5 2>&1); rc=$?
  echo "== ompi $tr np=$np mode=mix1000+h5 rc=$rc"; echo "$out" | sed 's/^/   /'
 done
done
