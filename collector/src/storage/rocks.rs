//! The RocksDB [`Kv`]: the only module that knows RocksDB. One column family per [`Table`]; the
//! write-ahead log in segment files under `wal/` in the same directory.

use super::StoreError;
use super::kv::{Kv, KvBatch, KvMemory, KvOp, Table, Visit};
use super::log::Log;
use super::segment_log::SegmentLog;
use rocksdb::{
    BlockBasedOptions, BottommostLevelCompaction, Cache, ColumnFamily, ColumnFamilyDescriptor,
    CompactOptions, DB, DBCompressionType, DBRecoveryMode, Direction, IteratorMode, Options,
    ReadOptions, WriteBatch, WriteBufferManager, WriteOptions,
};
use std::path::Path;

pub struct RocksKv {
    db: DB,
    cache: Cache,
    write_buffers: WriteBufferManager,
    log: SegmentLog,
}

impl RocksKv {
    /// Opens (or creates) the database under `path`, its memory bounded by `memory_bytes`:
    /// one block cache of that size, to which every memtable is charged (through a write
    /// buffer manager holding them to half of it, flushing the largest when they pass it), with
    /// index and filter blocks inside the cache too. So block cache + memtables stay within
    /// the one budget, however many tables are being written.
    pub fn open(path: &Path, memory_bytes: usize) -> Result<Self, StoreError> {
        let memory_bytes = memory_bytes.max(8 << 20);
        let cache = Cache::new_lru_cache(memory_bytes);
        let write_buffers = WriteBufferManager::new_write_buffer_manager_with_cache(
            memory_bytes / 2,
            false,
            cache.clone(),
        );
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        opts.set_max_total_wal_size(64 << 20);
        opts.set_keep_log_file_num(4);
        opts.increase_parallelism(2);
        // RocksDB's default, set so no options change drops it: recovery replays the log up to
        // the first torn record and stops, so a crash keeps a prefix of the writes, which the
        // `Kv::write` contract promises (node sequences written unsynced rely on it, made
        // durable by the checkpoint's synced batch, see `tsdb/mod.rs`).
        opts.set_wal_recovery_mode(DBRecoveryMode::PointInTime);
        opts.set_write_buffer_manager(&write_buffers);
        // A memtable may be as large as the budget allows; the manager flushes before that.
        let buffer = |share: usize| (memory_bytes / share).max(1 << 20);
        let families = Table::ALL.map(|table| {
            let mut cf = Options::default();
            let mut block = BlockBasedOptions::default();
            block.set_block_cache(&cache);
            block.set_cache_index_and_filter_blocks(true);
            block.set_pin_l0_filter_and_index_blocks_in_cache(true);
            // Blocks are compressed one by one: 16 KiB gives zstd four times RocksDB's default
            // context (head snapshots and rollup blocks repeat their layout series after
            // series), for about ten microseconds more per block a read decompresses.
            block.set_block_size(16 << 10);
            cf.set_block_based_table_factory(&block);
            match table {
                // Chunks are already compressed by their codec; zstd at the bottom squeezes the
                // headers and keys, LZ4 above keeps flushes cheap.
                Table::Chunks => {
                    cf.set_compression_type(DBCompressionType::Lz4);
                    cf.set_bottommost_compression_type(DBCompressionType::Zstd);
                    cf.set_write_buffer_size(buffer(8));
                }
                _ => {
                    cf.set_compression_type(DBCompressionType::Lz4);
                    cf.set_bottommost_compression_type(DBCompressionType::Zstd);
                    cf.set_write_buffer_size(buffer(16));
                }
            }
            ColumnFamilyDescriptor::new(table.name(), cf)
        });
        let db = DB::open_cf_descriptors(&opts, path, families).map_err(|e| StoreError::Open {
            path: path.to_owned(),
            source: Box::new(e),
        })?;
        let log = SegmentLog::open(&path.join("wal"))?;
        Ok(Self {
            db,
            cache,
            write_buffers,
            log,
        })
    }

    fn cf(&self, table: Table) -> &ColumnFamily {
        self.db
            .cf_handle(table.name())
            .expect("column family created at open")
    }
}

impl Kv for RocksKv {
    fn write(&self, batch: KvBatch, durable: bool) -> Result<(), StoreError> {
        let mut wb = WriteBatch::default();
        // Each operation is freed once copied, so a checkpoint's batch (tens of MiB under a
        // back-fill) is not held twice, here and in RocksDB's, at the peak.
        for op in batch.ops {
            match op {
                KvOp::Put(t, k, v) => wb.put_cf(self.cf(t), k, v),
                KvOp::Delete(t, k) => wb.delete_cf(self.cf(t), k),
                KvOp::DeleteRange(t, start, end) => wb.delete_range_cf(self.cf(t), start, end),
            }
        }
        let mut opts = WriteOptions::default();
        opts.set_sync(durable);
        self.db
            .write_opt(wb, &opts)
            .map_err(|e| StoreError::Write(Box::new(e)))
    }

    fn scan(
        &self,
        table: Table,
        start: &[u8],
        end: &[u8],
        visit: &mut Visit<'_>,
    ) -> Result<(), StoreError> {
        if start >= end {
            return Ok(());
        }
        let mut opts = ReadOptions::default();
        opts.set_iterate_upper_bound(end.to_vec());
        let iter = self.db.iterator_cf_opt(
            self.cf(table),
            opts,
            IteratorMode::From(start, Direction::Forward),
        );
        for item in iter {
            let (k, v) = item.map_err(|e| StoreError::Read(Box::new(e)))?;
            if !visit(&k, &v) {
                break;
            }
        }
        Ok(())
    }

    fn disk_size(&self, table: Table) -> u64 {
        let cf = self.cf(table);
        let prop = |name: &str| {
            self.db
                .property_int_value_cf(cf, name)
                .ok()
                .flatten()
                .unwrap_or(0)
        };
        prop("rocksdb.live-sst-files-size") + prop("rocksdb.size-all-mem-tables")
    }

    fn sync(&self) -> Result<(), StoreError> {
        self.db
            .flush_wal(true)
            .map_err(|e| StoreError::Write(Box::new(e)))
    }

    fn log(&self) -> &dyn Log {
        &self.log
    }

    fn memory(&self) -> KvMemory {
        KvMemory {
            cache: self.cache.get_usage() as u64,
            memtables: self.write_buffers.get_usage() as u64,
        }
    }

    fn compact(&self, table: Table) -> Result<(), StoreError> {
        self.db
            .compact_range_cf(self.cf(table), None::<&[u8]>, None::<&[u8]>);
        Ok(())
    }

    fn compact_fully(&self, table: Table) -> Result<(), StoreError> {
        // A table whose only data was just flushed is moved to the bottom level as it is, in
        // the flush's LZ4, and a plain compaction leaves the bottom level alone: zstd never ran
        // on it. This rewrites the bottom level's files, but for those the same call wrote.
        let mut options = CompactOptions::default();
        options.set_bottommost_level_compaction(BottommostLevelCompaction::ForceOptimized);
        let cf = self.cf(table);
        self.db
            .compact_range_cf_opt(cf, None::<&[u8]>, None::<&[u8]>, &options);
        Ok(())
    }

    fn flush(&self) -> Result<(), StoreError> {
        self.sync()?;
        for table in Table::ALL {
            self.db
                .flush_cf(self.cf(table))
                .map_err(|e| StoreError::Write(Box::new(e)))?;
        }
        Ok(())
    }
}
