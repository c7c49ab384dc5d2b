#!/usr/bin/env sh
# Prints the CMAKE_ARGS for building llama.cpp (llama-cpp-python, llama-bench) for
# GPU kind $1: cuda, metal or cpu.
#
# Some virtual machines advertise Intel AMX in CPUID, but their AMX tile state does
# not survive as llama.cpp expects: a native build then dies with SIGILL (tileloadd)
# in its first large matrix multiply. Under a hypervisor, AMX is left out of the
# build; on bare metal it stays.
kind="${1:-cpu}"
case "$kind" in
  cuda)  args="-DGGML_CUDA=on" ;;
  metal) args="-DGGML_METAL=on" ;;
  *)     args="-DGGML_METAL=off -DGGML_CUDA=off" ;;
esac

if [ "$(uname -s)" = Linux ] && [ "$(uname -m)" = x86_64 ] && grep -qw amx_tile /proc/cpuinfo 2>/dev/null \
   && grep -qw hypervisor /proc/cpuinfo 2>/dev/null; then
  noamx="-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
  args="$args -DCMAKE_C_FLAGS='$noamx' -DCMAKE_CXX_FLAGS='$noamx'"
fi
echo "$args"
