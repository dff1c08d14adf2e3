# SPDX-License-Identifier: MIT
# bash completion as an operator types: commands, a command's options, and image names taken
# from `lium-cvm --json images` (one image laid out in the store as `download` leaves it).
. "$LIUM_TEST/lib.sh"

image=/var/lib/lium-cvm/images/dstack-systest-0.5.11
mkdir -p "$image"
echo kernel >"$image/bzImage"
echo initrd >"$image/initramfs.cpio.gz"
echo '{"kernel": "bzImage", "initrd": "initramfs.cpio.gz", "version": "0.5.11"}' \
  >"$image/metadata.json"
(cd "$image" && sha256sum bzImage initramfs.cpio.gz metadata.json >sha256sum.txt &&
  sha256sum <sha256sum.txt | cut -d' ' -f1 >digest.txt)
chgrp -R lium-cvm "$image"

complete_line() {
  # $@: the words; the last one is the word being completed
  as_op bash -c '. /usr/share/bash-completion/bash_completion
    . /usr/share/bash-completion/completions/lium-cvm
    COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}
    _lium_cvm lium-cvm "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
    printf "%s\n" "${COMPREPLY[@]}"' bash "$@"
}
record commands complete_line lium-cvm st
record gpu-verbs complete_line lium-cvm gpu ''
record run-options complete_line lium-cvm run --d
record images-verify complete_line lium-cvm images verify ds
record new-image complete_line lium-cvm new vm1 --image ''
