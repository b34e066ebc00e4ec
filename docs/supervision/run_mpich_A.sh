#!/bin/bash
for tls in default tcp; do
 [ $tls = tcp ] && E="-genv UCX_TLS tcp,self" || E=""
 for np in 2 3; do
  for m in exit segv mix; do
    n=200; [ $m = mix ] && n=1000
    out=$(timeout 120 mpiexec.mpich $E -n $np ./ft_mpich $m $n 0 h5 2>&1); rc=$?
    echo "== mpich $tls np=$np mode=$m n=$n h5 rc=$rc"; echo "$out" | sed 's/^/   /' | head -20
  done
 done
done
