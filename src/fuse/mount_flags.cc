#include "fuse/mount_flags.h"

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/statvfs.h>

#include <cerrno>
#include <cstring>

namespace ecfs::fuse {
namespace {

// The mount's MS_* flags now, from statvfs(2)'s ST_* flags (equal for
// all but relatime: ST_RELATIME is 4096, MS_RELATIME 1 << 21).
Result<unsigned long> current_flags(const std::string& mountpoint) {
  struct statvfs st;
  if (::statvfs(mountpoint.c_str(), &st) != 0) {
    return fail(errno, "cannot read the flags of " + mountpoint + ": " + std::strerror(errno));
  }
  constexpr unsigned long kSame =
      ST_RDONLY | ST_NOSUID | ST_NODEV | ST_NOEXEC | ST_SYNCHRONOUS | ST_NOATIME | ST_NODIRATIME;
  static_assert(ST_RDONLY + 0ul == MS_RDONLY && ST_NOSUID + 0ul == MS_NOSUID &&
                ST_NODEV + 0ul == MS_NODEV && ST_NOEXEC + 0ul == MS_NOEXEC &&
                ST_SYNCHRONOUS + 0ul == MS_SYNCHRONOUS && ST_NOATIME + 0ul == MS_NOATIME &&
                ST_NODIRATIME + 0ul == MS_NODIRATIME);
  unsigned long flags = st.f_flag & kSame;
  if ((st.f_flag & ST_RELATIME) != 0) flags |= MS_RELATIME;
  // Neither noatime nor relatime: strictatime, which a remount must name or
  // the kernel falls back to relatime.
  if ((flags & (MS_NOATIME | MS_RELATIME)) == 0) flags |= MS_STRICTATIME;
  return flags;
}

void set(unsigned long& flags, unsigned long flag, const std::optional<bool>& on) {
  if (!on) return;
  if (*on) {
    flags |= flag;
  } else {
    flags &= ~flag;
  }
}

// `flags` with the changes of `wanted` applied.
unsigned long apply(unsigned long flags, const KernelMountFlags& wanted) {
  set(flags, MS_RDONLY, wanted.read_only);
  set(flags, MS_NOSUID, wanted.nosuid);
  set(flags, MS_NODEV, wanted.nodev);
  set(flags, MS_NOEXEC, wanted.noexec);
  set(flags, MS_SYNCHRONOUS, wanted.synchronous);
  set(flags, MS_DIRSYNC, wanted.dirsync);
  if (wanted.directory_atime) set(flags, MS_NODIRATIME, !*wanted.directory_atime);
  if (wanted.atime) {
    flags &= ~static_cast<unsigned long>(MS_NOATIME | MS_RELATIME | MS_STRICTATIME);
    switch (*wanted.atime) {
      case fs::AtimeUpdates::kNever:
        flags |= MS_NOATIME;
        break;
      case fs::AtimeUpdates::kRelative:
        flags |= MS_RELATIME;
        break;
      case fs::AtimeUpdates::kAlways:
        flags |= MS_STRICTATIME;
        break;
    }
  }
  return flags;
}

Status remount_with(const std::string& mountpoint, unsigned long flags) {
  if (::mount(nullptr, mountpoint.c_str(), nullptr, flags, nullptr) != 0) {
    return fail(errno, "remounting " + mountpoint + ": " + std::strerror(errno));
  }
  return ok();
}

}  // namespace

Status change_mount_flags(const std::string& mountpoint, const KernelMountFlags& flags) {
  struct mount_attr attr;
  std::memset(&attr, 0, sizeof(attr));
  auto choose = [&attr](uint64_t flag, const std::optional<bool>& on) {
    if (!on) return;
    (*on ? attr.attr_set : attr.attr_clr) |= flag;
  };
  choose(MOUNT_ATTR_RDONLY, flags.read_only);
  choose(MOUNT_ATTR_NOSUID, flags.nosuid);
  choose(MOUNT_ATTR_NODEV, flags.nodev);
  choose(MOUNT_ATTR_NOEXEC, flags.noexec);
  if (flags.directory_atime) choose(MOUNT_ATTR_NODIRATIME, !*flags.directory_atime);
  if (flags.atime) {
    // The atime mode is one field: cleared as a whole, then set
    // (mount_setattr(2)).
    attr.attr_clr |= MOUNT_ATTR__ATIME;
    switch (*flags.atime) {
      case fs::AtimeUpdates::kNever:
        attr.attr_set |= MOUNT_ATTR_NOATIME;
        break;
      case fs::AtimeUpdates::kRelative:
        attr.attr_set |= MOUNT_ATTR_RELATIME;
        break;
      case fs::AtimeUpdates::kAlways:
        attr.attr_set |= MOUNT_ATTR_STRICTATIME;
        break;
    }
  }
  if (::mount_setattr(AT_FDCWD, mountpoint.c_str(), 0, &attr, sizeof(attr)) != 0) {
    return fail(errno, "changing the mount flags of " + mountpoint + ": " + std::strerror(errno));
  }
  return ok();
}

Status remount(const std::string& mountpoint, const KernelMountFlags& flags) {
  auto now = current_flags(mountpoint);
  if (!now) return std::unexpected(now.error());
  return remount_with(mountpoint, MS_REMOUNT | apply(*now, flags));
}

}  // namespace ecfs::fuse
