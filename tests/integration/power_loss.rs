//! A disk that can lose power: a SQLite VFS over the platform's that keeps, beside the real
//! files, the image the disk would hold after a power cut — what was synced, nothing else.
//!
//! The real files serve every read, so SQLite runs as usual; each write is also remembered and
//! reaches the image only when its file is synced. Tests cut the power, then open a store on
//! the image: what a sync did not cover is gone, as after a real power loss (where the page
//! cache is lost; `kill -9` keeps it, which is why it proves nothing about syncs).
//!
//! Shared by the store's unit tests (included with `#[path]`) and the integration tests; one
//! file past 400 lines for that reason, most of it SQLite's table of pass-through callbacks.
#![allow(unsafe_code)] // A SQLite VFS is written against SQLite's C interface.
#![allow(dead_code)] // Each test crate uses a part of it.

use std::alloc::{Layout, alloc_zeroed, dealloc};
use std::collections::HashMap;
use std::ffi::{CStr, CString, c_char, c_int, c_void};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::ptr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use rusqlite::ffi;

/// What a sync does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Syncs reach the image.
    Healthy,
    /// Syncs wait until the hold ends (then reach the image).
    Held,
    /// Syncs fail with an I/O error and keep nothing; the machine keeps running.
    Failing,
    /// The power is failing: syncs wait, and never reach the image.
    Dying,
    /// The power is off: syncs fail; nothing reaches the image any more.
    Off,
}

/// A simulated disk: real files under `live/`, the post-power-loss image under `image/`.
pub struct Disk {
    state: Arc<DiskState>,
    vfs: String,
    root: PathBuf,
}

struct DiskState {
    base: BaseVfs,
    image: PathBuf,
    /// One state per file, however many connections have it open: a sync through any of
    /// them makes every write to the file durable, as `fsync` does.
    files: Mutex<HashMap<PathBuf, Arc<FileState>>>,
    phase: Mutex<Phase>,
    changed: Condvar,
    /// Syncs waiting while `Held`.
    held: AtomicUsize,
    /// Syncs that reached the image.
    syncs: AtomicU64,
}

/// The platform's VFS, which does the real I/O.
struct BaseVfs(*mut ffi::sqlite3_vfs);
// SAFETY: SQLite's VFS objects are immutable once registered and safe to use from any thread.
unsafe impl Send for BaseVfs {}
unsafe impl Sync for BaseVfs {}

/// A file's writes since its last sync, in order, from every handle of it.
struct FileState {
    image: PathBuf,
    unsynced: Mutex<Vec<Pending>>,
}

enum Pending {
    Write(u64, Vec<u8>),
    Truncate(u64),
}

/// The file object SQLite allocates (`szOsFile` bytes) for each open file.
#[repr(C)]
struct DiskFile {
    base: ffi::sqlite3_file,
    inner: *mut ffi::sqlite3_file,
    inner_size: usize,
    /// Null for temporary files, which have no name and need no image.
    tracked: *const FileState,
    disk: *const DiskState,
}

impl Disk {
    /// A disk under `root`, registered as a SQLite VFS named by [`Disk::vfs`].
    pub fn new(root: &Path) -> Disk {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        for dir in ["live", "image"] {
            std::fs::create_dir_all(root.join(dir)).unwrap();
        }
        // SAFETY: a null name asks for the default VFS, which SQLite always has.
        let base = unsafe { ffi::sqlite3_vfs_find(ptr::null()) };
        assert!(!base.is_null(), "SQLite has a default VFS");
        let state = Arc::new(DiskState {
            base: BaseVfs(base),
            image: root.join("image"),
            files: Mutex::new(HashMap::new()),
            phase: Mutex::new(Phase::Healthy),
            changed: Condvar::new(),
            held: AtomicUsize::new(0),
            syncs: AtomicU64::new(0),
        });
        let vfs = format!("power-loss-{}", NEXT.fetch_add(1, Ordering::SeqCst));
        register(&vfs, state.clone());
        Disk {
            state,
            vfs,
            root: root.to_path_buf(),
        }
    }

    /// The VFS name to open the store with.
    pub fn vfs(&self) -> String {
        self.vfs.clone()
    }

    /// Where a file lives while the power is on.
    pub fn live(&self, name: &str) -> PathBuf {
        self.root.join("live").join(name)
    }

    /// Where a file is after the power cut: only what was synced.
    pub fn image(&self, name: &str) -> PathBuf {
        self.root.join("image").join(name)
    }

    /// Syncs that reached the disk so far.
    pub fn syncs(&self) -> u64 {
        self.state.syncs.load(Ordering::SeqCst)
    }

    /// Syncs wait until the guard is dropped (also when a test fails, so that the store, dropped
    /// after the guard, can close).
    pub fn hold_syncs(&self) -> HeldSyncs<'_> {
        self.set(Phase::Held);
        HeldSyncs(self)
    }

    /// Waits until a sync is being held; false after `limit`.
    pub fn wait_for_held_sync(&self, limit: Duration) -> bool {
        let deadline = std::time::Instant::now() + limit;
        while self.state.held.load(Ordering::SeqCst) == 0 {
            if std::time::Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        true
    }

    /// Syncs work again, as after a disk error was cleared.
    pub fn repair(&self) {
        self.set(Phase::Healthy);
    }

    /// From now on syncs fail with an I/O error (as `fsync` does after a disk error).
    pub fn fail_syncs(&self) {
        self.set(Phase::Failing);
    }

    /// The power starts failing: syncs in flight or to come wait and never reach the disk.
    /// The machine runs on until [`Disk::power_off`]; what clients see meanwhile counts.
    pub fn cut_power(&self) {
        self.set(Phase::Dying);
    }

    /// The power is gone: waiting syncs fail, and the image is final.
    pub fn power_off(&self) {
        self.set(Phase::Off);
    }

    pub fn is_off(&self) -> bool {
        *lock(&self.state.phase) == Phase::Off
    }

    fn set(&self, phase: Phase) {
        *lock(&self.state.phase) = phase;
        self.state.changed.notify_all();
    }
}

/// Syncs are held while this lives.
pub struct HeldSyncs<'a>(&'a Disk);

impl Drop for HeldSyncs<'_> {
    fn drop(&mut self) {
        self.0.set(Phase::Healthy);
    }
}

impl DiskState {
    /// Waits out a held or dying phase; true when the sync may reach the image. Applies the
    /// file's pending writes while holding the phase, so a power cut cannot fall in between.
    fn sync(&self, file: &FileState) -> bool {
        let mut phase = lock(&self.phase);
        loop {
            match *phase {
                Phase::Healthy => break,
                Phase::Failing | Phase::Off => return false,
                Phase::Held => {
                    self.held.fetch_add(1, Ordering::SeqCst);
                    phase = self.changed.wait(phase).unwrap_or_else(|p| p.into_inner());
                    self.held.fetch_sub(1, Ordering::SeqCst);
                }
                Phase::Dying => {
                    phase = self.changed.wait(phase).unwrap_or_else(|p| p.into_inner());
                }
            }
        }
        if file.apply().is_err() {
            // The image is gone (a failed test removed its directory): the sync fails.
            return false;
        }
        self.syncs.fetch_add(1, Ordering::SeqCst);
        true
    }

    /// The state of the file whose image is `name`.
    fn file(&self, name: &Path) -> Arc<FileState> {
        let image = self.image.join(name);
        let mut files = lock(&self.files);
        let state = files.entry(image.clone()).or_insert_with(|| {
            Arc::new(FileState {
                image,
                unsynced: Mutex::new(Vec::new()),
            })
        });
        state.clone()
    }

    /// Whether file deletions still reach the image.
    fn powered(&self) -> bool {
        matches!(*lock(&self.phase), Phase::Healthy | Phase::Held)
    }
}

impl FileState {
    /// Writes what was pending into the image.
    fn apply(&self) -> std::io::Result<()> {
        let pending = std::mem::take(&mut *lock(&self.unsynced));
        let image = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(&self.image)?;
        for change in pending {
            match change {
                Pending::Write(offset, data) => image.write_all_at(&data, offset)?,
                Pending::Truncate(size) => image.set_len(size)?,
            }
        }
        Ok(())
    }
}

/// Locks without panicking: a panic must not cross SQLite's C frames (it would abort the
/// whole test binary), and a test that failed elsewhere may have poisoned the lock.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The image of the file SQLite names `name`, when it has one.
unsafe fn image_name(name: *const c_char) -> Option<PathBuf> {
    if name.is_null() {
        return None;
    }
    let path = unsafe { CStr::from_ptr(name) }.to_str().ok()?;
    Path::new(path).file_name().map(PathBuf::from)
}

fn register(name: &str, state: Arc<DiskState>) {
    // SAFETY: `base` is the registered default VFS; it outlives the process.
    let base = unsafe { &*state.base.0 };
    let vfs = Box::new(ffi::sqlite3_vfs {
        iVersion: 2,
        szOsFile: std::mem::size_of::<DiskFile>() as c_int,
        mxPathname: base.mxPathname,
        pNext: ptr::null_mut(),
        // The name, the state and the VFS live as long as the process: SQLite keeps them.
        zName: CString::new(name).unwrap().into_raw(),
        pAppData: Arc::into_raw(state) as *mut c_void,
        xOpen: Some(x_open),
        xDelete: Some(x_delete),
        xAccess: Some(x_access),
        xFullPathname: Some(x_full_pathname),
        xDlOpen: None,
        xDlError: None,
        xDlSym: None,
        xDlClose: None,
        xRandomness: Some(x_randomness),
        xSleep: Some(x_sleep),
        xCurrentTime: Some(x_current_time),
        xGetLastError: Some(x_get_last_error),
        xCurrentTimeInt64: Some(x_current_time_int64),
        xSetSystemCall: None,
        xGetSystemCall: None,
        xNextSystemCall: None,
    });
    // SAFETY: the VFS object is leaked, so it stays valid while SQLite holds it.
    let rc = unsafe { ffi::sqlite3_vfs_register(Box::into_raw(vfs), 0) };
    assert_eq!(rc, ffi::SQLITE_OK, "registering the power-loss VFS");
}

// SAFETY (for every callback below): SQLite calls them with the VFS registered above, whose
// `pAppData` is a leaked `Arc<DiskState>`, and with file objects of `szOsFile` bytes that
// `x_open` initialised as `DiskFile`s.

unsafe fn disk_of<'a>(vfs: *mut ffi::sqlite3_vfs) -> &'a DiskState {
    unsafe { &*((*vfs).pAppData as *const DiskState) }
}

unsafe fn base_of(vfs: *mut ffi::sqlite3_vfs) -> *mut ffi::sqlite3_vfs {
    unsafe { disk_of(vfs).base.0 }
}

unsafe extern "C" fn x_open(
    vfs: *mut ffi::sqlite3_vfs,
    name: ffi::sqlite3_filename,
    file: *mut ffi::sqlite3_file,
    flags: c_int,
    out_flags: *mut c_int,
) -> c_int {
    unsafe {
        let disk = disk_of(vfs);
        let base = disk.base.0;
        (*file).pMethods = ptr::null();
        let inner_size = (*base).szOsFile as usize;
        let layout = inner_layout(inner_size);
        let inner = alloc_zeroed(layout) as *mut ffi::sqlite3_file;
        let rc = ((*base).xOpen.unwrap())(base, name, inner, flags, out_flags);
        if rc != ffi::SQLITE_OK {
            if !(*inner).pMethods.is_null() {
                ((*(*inner).pMethods).xClose.unwrap())(inner);
            }
            dealloc(inner as *mut u8, layout);
            return rc;
        }
        let tracked = match image_name(name) {
            Some(name) => Arc::into_raw(disk.file(&name)),
            None => ptr::null(),
        };
        ptr::write(
            file as *mut DiskFile,
            DiskFile {
                base: ffi::sqlite3_file { pMethods: &METHODS },
                inner,
                inner_size,
                tracked,
                disk,
            },
        );
        ffi::SQLITE_OK
    }
}

unsafe extern "C" fn x_delete(
    vfs: *mut ffi::sqlite3_vfs,
    name: *const c_char,
    sync_dir: c_int,
) -> c_int {
    unsafe {
        let base = base_of(vfs);
        let rc = ((*base).xDelete.unwrap())(base, name, sync_dir);
        let disk = disk_of(vfs);
        if rc == ffi::SQLITE_OK
            && let Some(name) = image_name(name)
        {
            // A file made later under the same name starts empty, without this one's writes.
            let file = disk.file(&name);
            lock(&file.unsynced).clear();
            if disk.powered() {
                let _ = std::fs::remove_file(&file.image);
            }
        }
        rc
    }
}

/// VFS methods that only pass the call to the platform's VFS.
macro_rules! pass_to_vfs {
    ($($name:ident => $method:ident($($arg:ident: $ty:ty),*);)*) => {$(
        unsafe extern "C" fn $name(vfs: *mut ffi::sqlite3_vfs, $($arg: $ty),*) -> c_int {
            unsafe {
                let base = base_of(vfs);
                ((*base).$method.unwrap())(base, $($arg),*)
            }
        }
    )*};
}

pass_to_vfs! {
    x_access => xAccess(name: *const c_char, flags: c_int, out: *mut c_int);
    x_full_pathname => xFullPathname(name: *const c_char, size: c_int, out: *mut c_char);
    x_randomness => xRandomness(size: c_int, out: *mut c_char);
    x_sleep => xSleep(micros: c_int);
    x_current_time => xCurrentTime(out: *mut f64);
    x_get_last_error => xGetLastError(size: c_int, out: *mut c_char);
    x_current_time_int64 => xCurrentTimeInt64(out: *mut ffi::sqlite3_int64);
}

static METHODS: ffi::sqlite3_io_methods = ffi::sqlite3_io_methods {
    // Version 2: shared memory for the WAL index, but no memory-mapped I/O, so every read and
    // write goes through xRead and xWrite.
    iVersion: 2,
    xClose: Some(x_close),
    xRead: Some(x_read),
    xWrite: Some(x_write),
    xTruncate: Some(x_truncate),
    xSync: Some(x_sync),
    xFileSize: Some(x_file_size),
    xLock: Some(x_lock),
    xUnlock: Some(x_unlock),
    xCheckReservedLock: Some(x_check_reserved_lock),
    xFileControl: Some(x_file_control),
    xSectorSize: Some(x_sector_size),
    xDeviceCharacteristics: Some(x_device_characteristics),
    xShmMap: Some(x_shm_map),
    xShmLock: Some(x_shm_lock),
    xShmBarrier: Some(x_shm_barrier),
    xShmUnmap: Some(x_shm_unmap),
    xFetch: None,
    xUnfetch: None,
};

/// The platform file's allocation: `size` bytes, aligned for any C struct.
fn inner_layout(size: usize) -> Layout {
    Layout::from_size_align(size, 16).expect("a small size and a power of two")
}

/// The `DiskFile` behind a file object, and the platform's methods for its inner file.
unsafe fn parts<'a>(
    file: *mut ffi::sqlite3_file,
) -> (
    &'a DiskFile,
    *mut ffi::sqlite3_file,
    &'a ffi::sqlite3_io_methods,
) {
    unsafe {
        let disk_file = &*(file as *const DiskFile);
        let inner = disk_file.inner;
        (disk_file, inner, &*(*inner).pMethods)
    }
}

unsafe extern "C" fn x_close(file: *mut ffi::sqlite3_file) -> c_int {
    unsafe {
        let (disk_file, inner, methods) = parts(file);
        let rc = (methods.xClose.unwrap())(inner);
        dealloc(inner as *mut u8, inner_layout(disk_file.inner_size));
        if !disk_file.tracked.is_null() {
            drop(Arc::from_raw(disk_file.tracked));
        }
        rc
    }
}

unsafe extern "C" fn x_write(
    file: *mut ffi::sqlite3_file,
    buffer: *const c_void,
    amount: c_int,
    offset: ffi::sqlite3_int64,
) -> c_int {
    unsafe {
        let (disk_file, inner, methods) = parts(file);
        let rc = (methods.xWrite.unwrap())(inner, buffer, amount, offset);
        if rc == ffi::SQLITE_OK && !disk_file.tracked.is_null() {
            let data = std::slice::from_raw_parts(buffer as *const u8, amount as usize);
            lock(&(*disk_file.tracked).unsynced).push(Pending::Write(offset as u64, data.to_vec()));
        }
        rc
    }
}

unsafe extern "C" fn x_truncate(file: *mut ffi::sqlite3_file, size: ffi::sqlite3_int64) -> c_int {
    unsafe {
        let (disk_file, inner, methods) = parts(file);
        let rc = (methods.xTruncate.unwrap())(inner, size);
        if rc == ffi::SQLITE_OK && !disk_file.tracked.is_null() {
            lock(&(*disk_file.tracked).unsynced).push(Pending::Truncate(size as u64));
        }
        rc
    }
}

unsafe extern "C" fn x_sync(file: *mut ffi::sqlite3_file, flags: c_int) -> c_int {
    unsafe {
        let (disk_file, inner, methods) = parts(file);
        let rc = (methods.xSync.unwrap())(inner, flags);
        if rc != ffi::SQLITE_OK || disk_file.tracked.is_null() {
            return rc;
        }
        if (*disk_file.disk).sync(&*disk_file.tracked) {
            ffi::SQLITE_OK
        } else {
            ffi::SQLITE_IOERR_FSYNC
        }
    }
}

/// I/O methods that only pass the call to the platform's file.
macro_rules! pass_to_file {
    ($($name:ident => $method:ident($($arg:ident: $ty:ty),*) -> $ret:ty;)*) => {$(
        unsafe extern "C" fn $name(file: *mut ffi::sqlite3_file, $($arg: $ty),*) -> $ret {
            unsafe {
                let (_, inner, methods) = parts(file);
                (methods.$method.unwrap())(inner, $($arg),*)
            }
        }
    )*};
}

pass_to_file! {
    x_read => xRead(buffer: *mut c_void, amount: c_int, offset: ffi::sqlite3_int64) -> c_int;
    x_file_size => xFileSize(size: *mut ffi::sqlite3_int64) -> c_int;
    x_lock => xLock(level: c_int) -> c_int;
    x_unlock => xUnlock(level: c_int) -> c_int;
    x_check_reserved_lock => xCheckReservedLock(out: *mut c_int) -> c_int;
    x_file_control => xFileControl(op: c_int, argument: *mut c_void) -> c_int;
    x_sector_size => xSectorSize() -> c_int;
    x_device_characteristics => xDeviceCharacteristics() -> c_int;
    x_shm_map => xShmMap(region: c_int, size: c_int, extend: c_int, out: *mut *mut c_void) -> c_int;
    x_shm_lock => xShmLock(offset: c_int, count: c_int, flags: c_int) -> c_int;
    x_shm_barrier => xShmBarrier() -> ();
    x_shm_unmap => xShmUnmap(delete: c_int) -> c_int;
}
