# SPDX-License-Identifier: MIT
# Every write the helper makes outside /sys, under the shipped unit (ProtectSystem=strict):
# load-modules --persist writes /etc/modules-load.d, gpu dma-limit --persist writes
# /etc/modprobe.d and the (fake) sysfs. The ungrouped user first: refused, nothing written.
. "$LIUM_TEST/lib.sh"

modules_file=/etc/modules-load.d/lium-cvm.conf
dma_file=/etc/modprobe.d/lium-cvm-vfio.conf
dma_sysfs=$FAKE_SYSFS/module/vfio_iommu_type1/parameters/dma_entry_limit
rm -f "$modules_file" "$dma_file"

record out-load as_out lium-cvm --json --no-ask-password load-modules vfio_pci --persist
record out-dma as_out lium-cvm --json --no-ask-password gpu dma-limit 16777216 --persist
record out-files ls -A /etc/modules-load.d /etc/modprobe.d
record out-sysfs cat "$dma_sysfs"

record op-load as_op lium-cvm --json --no-ask-password load-modules vfio_pci --persist
record op-modules-file cat "$modules_file"
record op-dma as_op lium-cvm --json --no-ask-password gpu dma-limit 16777216 --persist
record op-dma-file cat "$dma_file"
record op-sysfs cat "$dma_sysfs"
record op-files stat -c '%n %U:%G %a' "$modules_file" "$dma_file"
