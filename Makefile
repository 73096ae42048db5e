# The two commands of the README:
#   make demo   install what ecfs needs, build it, run the demonstration
#   make check  install what is missing, build, run every test
# Plus: make build, make bench, make xfstests, make format.

BUILD      ?= build
ASAN_BUILD ?= build-asan
JOBS       ?= $(shell nproc)
CMAKE_GEN  := $(shell command -v ninja >/dev/null 2>&1 && echo "-G Ninja")

PREFIX     ?= /usr/local

.PHONY: all deps build asan demo check install uninstall package test-unit test-asan test-kernel fuzz bench bench-fs bench-unlock bench-rekey bench-space xfstests format clean

all: build

deps:
	@bash scripts/install-deps.sh all

# Everything: the library layers, ecfs, every test and benchmark. (Re-run
# each time, so a tree that `make demo` configured without the tests gets
# them.)
build: deps
	cmake -S . -B $(BUILD) $$(test -f $(BUILD)/CMakeCache.txt || echo "$(CMAKE_GEN)") \
	  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DECFS_BUILD_TESTS=ON -DECFS_BUILD_BENCH=ON >/dev/null
	cmake --build $(BUILD) -j $(JOBS)

$(ASAN_BUILD)/CMakeCache.txt: | deps
	cmake -S . -B $(ASAN_BUILD) $(CMAKE_GEN) -DCMAKE_BUILD_TYPE=Debug \
	  -DECFS_SANITIZE=ON -DECFS_BUILD_BENCH=OFF

# The sanitizer build covers the library layers' unit tests.
asan: deps $(ASAN_BUILD)/CMakeCache.txt
	cmake --build $(ASAN_BUILD) -j $(JOBS) --target base_tests crypto_tests fscrypt_tests block_tests store_tests fs_tests

# The first run: only what `ecfs` needs is installed and built (a tree
# configured before keeps its settings; the tests are left out otherwise).
demo:
	@bash scripts/install-deps.sh demo
	@test -f $(BUILD)/CMakeCache.txt || cmake -S . -B $(BUILD) $(CMAKE_GEN) \
	  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DECFS_BUILD_TESTS=OFF -DECFS_BUILD_BENCH=OFF >/dev/null
	cmake --build $(BUILD) -j $(JOBS) --target ecfs
	@bash scripts/demo.sh $(BUILD)/bin/ecfs

# Installed as a filesystem tool (PREFIX, DESTDIR as usual): ecfs in
# PREFIX/sbin, mount.fuse.ecfs and mount.fuseblk.ecfs in /sbin where mount(8)
# looks (/usr/sbin with PREFIX=/usr), manual pages, bash completion. The build tree must be configured
# (make demo or make build first, or this configures one without tests).
install:
	@bash scripts/install-deps.sh install
	@test -f $(BUILD)/CMakeCache.txt || cmake -S . -B $(BUILD) $(CMAKE_GEN) \
	  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DECFS_BUILD_TESTS=OFF -DECFS_BUILD_BENCH=OFF >/dev/null
	cmake -S . -B $(BUILD) >/dev/null  # finds help2man if it was just installed
	cmake --build $(BUILD) -j $(JOBS) --target ecfs man
	cmake --install $(BUILD) --prefix $(PREFIX)

# Removes what the last `make install` of this tree installed.
uninstall:
	@test -f $(BUILD)/install_manifest.txt || { echo "uninstall: nothing installed from $(BUILD)" >&2; exit 1; }
	@while read -r f || [ -n "$$f" ]; do rm -fv "$(DESTDIR)$$f"; done < $(BUILD)/install_manifest.txt

# A Debian package of what `make install` installs (prefix /usr), in
# $(BUILD): apt install ./$(BUILD)/ecfs_*.deb
package:
	@bash scripts/install-deps.sh install
	@test -f $(BUILD)/CMakeCache.txt || cmake -S . -B $(BUILD) $(CMAKE_GEN) \
	  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DECFS_BUILD_TESTS=OFF -DECFS_BUILD_BENCH=OFF >/dev/null
	cmake -S . -B $(BUILD) >/dev/null
	cmake --build $(BUILD) -j $(JOBS) --target ecfs man
	cd $(BUILD) && cpack -G DEB

test-unit: build
	ctest --test-dir $(BUILD) -L unit --output-on-failure -j $(JOBS)

test-asan: asan
	ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  ctest --test-dir $(ASAN_BUILD) -L unit --output-on-failure -j $(JOBS)

test-kernel: build
	ctest --test-dir $(BUILD) -L kernel --output-on-failure

check: build asan
	bash scripts/check.sh $(BUILD) $(ASAN_BUILD)

fuzz: deps
	bash scripts/fuzz.sh

bench: build
	$(BUILD)/bin/ecfs_bench

# Filesystem benchmark through a FUSE mount against the host filesystem
# (root, /dev/fuse; ECFS_BENCH_SIZE / ECFS_BENCH_FILES to scale it).
bench-fs: build
	bash bench/fs_bench.sh $(BUILD)

# Unlock time of a passphrase protector (calibrated to about 1 s by design)
# beside a key-file protector (root, /dev/fuse).
bench-unlock: build
	bash bench/unlock_bench.sh $(BUILD)

bench-rekey: build
	bash bench/rekey_bench.sh $(BUILD)

bench-space: build
	bash bench/space_bench.sh $(BUILD)

# xfstests' generic quick group through a FUSE mount (root, /dev/fuse; the
# checkout, images and results live outside the repository, see the script).
xfstests: build
	bash scripts/xfstests.sh $(BUILD)/bin/ecfs

format:
	clang-format -i $$(git ls-files '*.cc' '*.h')

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
