//! `sigil scan`: rules over CloudTrail logs, in parallel over files and over
//! batches of large files, with results written in input order.

use std::collections::{BTreeMap, HashMap};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::{mpsc, Arc, Condvar, Mutex};
use std::time::Instant;

use rayon::iter::ParallelIterator;
use rayon::slice::ParallelSlice;
use sigil_compiler::catalog::Catalog;
use sigil_compiler::diag::Severity;
use sigil_compiler::ir;
use sigil_runtime::correlate::{EventBatch, RecordRef};
use sigil_runtime::input::{
    self, rescan_unchecked, Batch, BufferPool, Damage, InputSource, RecordReader, RecordSpan,
};
use sigil_runtime::json::{escape_json, JsonError, Projection};
use sigil_runtime::{InputLogSource, Matcher, Program};

use sigil::correlation;

use crate::check::{config, EXIT_CLEAN, EXIT_FINDINGS, EXIT_USAGE};
use sigil::render;

/// Output formats of `scan`.
#[derive(Clone, Copy, clap::ValueEnum, PartialEq, Eq, Debug)]
pub enum ScanFormat {
    /// One JSON object per detection (the machine-readable contract).
    Jsonl,
    /// A table for people: time, rule, level, principal, source IP, event.
    Table,
    /// Detections per rule.
    Count,
}

/// Options of `scan`.
#[derive(clap::Args)]
pub struct ScanOptions {
    /// Rule files or directories (recursive; repeat the option or separate
    /// with commas). Default: `rules/`.
    #[arg(long = "rules", short = 'r', value_delimiter = ',')]
    pub rules: Vec<PathBuf>,
    /// Log files or directories: .json ({"Records":[...]}, a record or an
    /// array), .jsonl/.ndjson, .gz of these, S3 delivery trees; `-` = stdin.
    pub inputs: Vec<PathBuf>,
    /// Output format; `table` on a terminal, `jsonl` otherwise.
    #[arg(long, value_enum)]
    pub format: Option<ScanFormat>,
    /// Worker threads (default: one per core).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Output only these fields of each matched record (comma-separated paths).
    #[arg(long, value_delimiter = ',')]
    pub fields: Vec<String>,
    /// Exit with 1 when anything is detected.
    #[arg(long)]
    pub fail_on_match: bool,
    /// YAML file of `expand` placeholder values.
    #[arg(long)]
    pub placeholders: Option<PathBuf>,
    /// The input's logsource (default: product=aws service=cloudtrail); repeat for several keys.
    #[arg(long)]
    pub logsource: Vec<String>,
    /// Memory for correlation window events before they are spilled, sorted,
    /// to a temporary file (in TMPDIR) and merged at the end; e.g. 64M, 1G.
    #[arg(long, value_name = "SIZE", default_value = "256M", value_parser = correlation::parse_memory)]
    pub correlation_memory: u64,
    /// No summary or progress on stderr (the RESULT line is still printed).
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

/// About 1,500 CloudTrail records: small enough that the last batches of a
/// file keep both cores busy (2 MiB gave 1.8× on two cores where 4 MiB gave
/// 1.67–1.80×) and that fewer bytes are in flight.
const BATCH_BYTES: usize = 2 << 20;
const TABLE_FIELDS: [&str; 5] = [
    "eventTime",
    "userIdentity.arn",
    "sourceIPAddress",
    "eventName",
    "eventSource",
];

struct Shared<'a> {
    program: &'a Program,
    format: ScanFormat,
    rule_json: Vec<String>,
    projection: Option<Projection>,
    table: Projection,
    names: Vec<String>,
    /// `names`, escaped for JSON.
    files: Vec<String>,
    plan: &'a correlation::Plan,
    /// Batch and output buffers, reused.
    buffers: Arc<BufferPool>,
    /// Matchers between batches: each keeps its scratch buffers and what it
    /// has measured about the input (which dispatch is cheaper).
    matchers: Mutex<Vec<Matcher<'a>>>,
}

#[derive(Default)]
struct Stats {
    records: u64,
    bytes: u64,
    damaged: u64,
    per_rule: Vec<u64>,
    events: EventBatch,
    dropped: correlation::Dropped,
}

enum Msg {
    Batch {
        source: usize,
        seq: usize,
        out: Vec<u8>,
        stats: Stats,
        damage: Vec<Damage>,
    },
    Done {
        source: usize,
        batches: usize,
    },
    OpenFailed {
        source: usize,
        damage: Damage,
    },
}

/// Bounds the batches read but not yet written, so memory stays flat.
///
/// A slot is taken before a batch is read and given back when the writer has
/// written it. Output is written in file order, so batches of later files
/// can hold every slot while the file the writer waits for needs one: that
/// file (the front) may therefore always have one batch in flight, even
/// past the limit, and the scan always progresses.
struct Slots {
    state: Mutex<SlotState>,
    cv: Condvar,
}

struct SlotState {
    free: isize,
    front: usize,
    in_flight: HashMap<usize, usize>,
}

impl Slots {
    fn new(slots: usize) -> Self {
        Slots {
            state: Mutex::new(SlotState {
                free: slots as isize,
                front: 0,
                in_flight: HashMap::new(),
            }),
            cv: Condvar::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, SlotState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes a slot for a batch of `source`, waiting while none is free.
    fn acquire(&self, source: usize) {
        let mut st = self.lock();
        loop {
            let front_idle =
                st.front == source && st.in_flight.get(&source).copied().unwrap_or(0) == 0;
            if st.free > 0 || front_idle {
                st.free -= 1;
                *st.in_flight.entry(source).or_default() += 1;
                return;
            }
            st = self.cv.wait(st).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Gives a slot of `source` back.
    fn release(&self, source: usize) {
        let mut st = self.lock();
        st.free += 1;
        if let Some(n) = st.in_flight.get_mut(&source) {
            *n = n.saturating_sub(1);
        }
        drop(st);
        self.cv.notify_all();
    }

    /// The writer now waits for `source`.
    fn set_front(&self, source: usize) {
        self.lock().front = source;
        self.cv.notify_all();
    }
}

fn parse_logsource(items: &[String]) -> Result<InputLogSource, String> {
    if items.is_empty() {
        return Ok(InputLogSource::default());
    }
    let mut ls = InputLogSource {
        product: None,
        service: None,
        category: None,
    };
    for item in items {
        let (k, v) = item
            .split_once('=')
            .ok_or_else(|| format!("`--logsource {item}`: expected KEY=VALUE"))?;
        match k {
            "product" => ls.product = Some(v.to_string()),
            "service" => ls.service = Some(v.to_string()),
            "category" => ls.category = Some(v.to_string()),
            _ => {
                return Err(format!(
                    "`--logsource {item}`: key must be product, service or category"
                ))
            }
        }
    }
    Ok(ls)
}

pub fn run(opts: ScanOptions) -> u8 {
    let started = Instant::now();
    let stdout_tty = std::io::stdout().is_terminal();
    let format = opts.format.unwrap_or(if stdout_tty {
        ScanFormat::Table
    } else {
        ScanFormat::Jsonl
    });
    let cfg = match config(opts.placeholders.clone()) {
        Ok(c) => c,
        Err(diags) => {
            let _ = render::human(&mut std::io::stderr().lock(), diags.iter());
            return EXIT_USAGE;
        }
    };
    let input_ls = match parse_logsource(&opts.logsource) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_USAGE;
        }
    };
    let rule_paths = if opts.rules.is_empty() {
        vec![PathBuf::from("rules")]
    } else {
        opts.rules.clone()
    };
    let catalog = Catalog::load(&rule_paths, &cfg);
    let (ir, ir_diags) = ir::from_catalog(&catalog);
    let mut rule_errors: Vec<_> = catalog
        .diagnostics()
        .iter()
        .chain(ir_diags.iter())
        .filter(|d| d.severity() == Severity::Error)
        .cloned()
        .collect();
    rule_errors.sort_by_key(|d| (d.path().map(|p| p.to_path_buf()), d.span().map(|s| s.start)));
    if !rule_errors.is_empty() {
        let _ = render::human(&mut std::io::stderr().lock(), rule_errors.iter());
        eprintln!(
            "warning: {} rule problems above; those rules are not run (see `sigil check`)",
            rule_errors.len()
        );
    }
    let (mut program, problems) = Program::build(&ir, &input_ls);
    for p in &problems {
        eprintln!(
            "error: rule `{}` ({}) cannot run: {}",
            p.rule, p.origin, p.message
        );
    }
    if std::env::var_os("SIGIL_PLAN").is_some() {
        eprint!("{}", program.plan());
    }
    if program.rule_count() == 0 {
        eprintln!(
            "error: no rule to run (loaded {} rules, {} do not fit the input logsource)",
            ir.rules.len(),
            program.skipped_logsource()
        );
        return EXIT_USAGE;
    }
    let inputs = if opts.inputs.is_empty() {
        if std::io::stdin().is_terminal() {
            eprintln!(
                "error: no input given; name files or directories, or `-` for standard input"
            );
            return EXIT_USAGE;
        }
        vec![PathBuf::from("-")]
    } else {
        opts.inputs.clone()
    };
    let discovery = input::discover(&inputs);
    let mut io_errors = discovery.errors.len();
    for d in &discovery.errors {
        eprintln!("error: {}: {}", d.file, d.reason);
    }
    if discovery.sources.is_empty() {
        eprintln!("error: no input files found");
        return EXIT_USAGE;
    }
    let threads = opts.threads.unwrap_or(0);
    let pool = match rayon::ThreadPoolBuilder::new().num_threads(threads).build() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: cannot start worker threads: {e}");
            return EXIT_USAGE;
        }
    };
    let plan = correlation::Plan::new(&ir.correlations, &mut program);
    let rule_json: Vec<String> = (0..program.rule_count())
        .map(|i| {
            let info = program.info(i);
            serde_json::json!({
                "id": info.id, "title": info.title, "level": info.level, "tags": info.tags, "author": info.author,
            })
            .to_string()
        })
        .collect();
    let names: Vec<String> = discovery
        .sources
        .iter()
        .map(|s| match s {
            InputSource::File(p) => p.display().to_string(),
            InputSource::Stdin => "-".to_string(),
        })
        .collect();
    let shared = Shared {
        program: &program,
        format,
        rule_json,
        projection: (!opts.fields.is_empty()).then(|| Projection::new(&opts.fields)),
        table: Projection::new(&TABLE_FIELDS.map(String::from)),
        files: names.iter().map(|n| escape_json(n)).collect(),
        names,
        plan: &plan,
        buffers: Arc::default(),
        matchers: Mutex::default(),
    };
    let total_threads = pool.current_num_threads();
    let slots = Slots::new(total_threads * 3);
    let progress = (!opts.quiet && std::io::stderr().is_terminal()).then(|| {
        let bar = indicatif::ProgressBar::new_spinner();
        bar.set_style(
            indicatif::ProgressStyle::with_template("{spinner} {elapsed} {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
        );
        bar
    });

    let (tx, rx) = mpsc::channel::<Msg>();
    let mut totals = Stats {
        per_rule: vec![0; program.rule_count()],
        ..Stats::default()
    };
    let mut damage_lines = 0u64;
    let mut corr_events = correlation::collector(&plan, opts.correlation_memory);
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(1 << 20, stdout.lock());
    let mut broken_pipe = false;
    if format == ScanFormat::Table {
        let _ = writeln!(
            out,
            "{:<20}  {:<40}  {:<13}  {:<50}  {:<15}  EVENT",
            "TIME", "RULE", "LEVEL", "PRINCIPAL", "SOURCE IP"
        );
    }
    std::thread::scope(|scope| {
        let pool = &pool;
        let shared = &shared;
        let slots = &slots;
        let sources = &discovery.sources;
        let next_source = std::sync::atomic::AtomicUsize::new(0);
        let workers = pool.current_num_threads();
        scope.spawn(move || {
            // Readers are plain threads, each taking the next file in order
            // (files finish roughly in order, so the ordered writer buffers
            // little); their batches run as tasks on the worker pool. A
            // reader never runs pool tasks itself: a blocked reader nested
            // inside another's stack could stall the file the writer needs.
            pool.in_place_scope(|rs| {
                std::thread::scope(|readers| {
                    for _ in 0..workers {
                        let tx = tx.clone();
                        let next_source = &next_source;
                        readers.spawn(move || loop {
                            let si = next_source.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            let Some(src) = sources.get(si) else { break };
                            process_source(si, src, shared, slots, &tx, rs);
                        });
                    }
                });
            });
            drop(tx);
        });
        // The writer: emits batches in (source, batch) order.
        let mut slot_batches: std::collections::HashSet<(usize, usize)> =
            std::collections::HashSet::new();
        let mut pending: BTreeMap<(usize, usize), (Vec<u8>, Vec<Damage>)> = BTreeMap::new();
        let mut done: HashMap<usize, usize> = HashMap::new();
        let (mut next_source, mut next_seq) = (0usize, 0usize);
        for msg in rx {
            match msg {
                Msg::Batch {
                    source,
                    seq,
                    out: bytes,
                    stats,
                    damage,
                } => {
                    slot_batches.insert((source, seq));
                    totals.records += stats.records;
                    totals.bytes += stats.bytes;
                    totals.damaged += stats.damaged;
                    for (t, s) in totals.per_rule.iter_mut().zip(&stats.per_rule) {
                        *t += s;
                    }
                    totals.dropped.no_time += stats.dropped.no_time;
                    totals.dropped.no_group += stats.dropped.no_group;
                    corr_events.push_batch(&stats.events);
                    pending.insert((source, seq), (bytes, damage));
                }
                Msg::Done { source, batches } => {
                    done.insert(source, batches);
                }
                Msg::OpenFailed { source, damage } => {
                    io_errors += 1;
                    pending.insert((source, 0), (Vec::new(), vec![damage]));
                    done.insert(source, 1);
                }
            }
            loop {
                if let Some((bytes, damage)) = pending.remove(&(next_source, next_seq)) {
                    if slot_batches.remove(&(next_source, next_seq)) {
                        slots.release(next_source);
                    }
                    for d in damage {
                        damage_lines += 1;
                        if damage_lines <= 1000 {
                            let rec = d
                                .record
                                .map(|r| format!(", record {r}"))
                                .unwrap_or_default();
                            let msg = format!(
                                "warning: skipped damaged input: {}: line {}, byte {}{rec}: {}",
                                d.file, d.line, d.offset, d.reason
                            );
                            match &progress {
                                Some(bar) => bar.println(msg),
                                None => eprintln!("{msg}"),
                            }
                        }
                    }
                    if !broken_pipe && out.write_all(&bytes).is_err() {
                        broken_pipe = true;
                    }
                    shared.buffers.give(bytes);
                    next_seq += 1;
                } else if done.get(&next_source) == Some(&next_seq) {
                    next_source += 1;
                    next_seq = 0;
                    slots.set_front(next_source);
                } else {
                    break;
                }
            }
            if let Some(bar) = &progress {
                bar.set_message(format!(
                    "{} records, {} MB, {} detections",
                    totals.records,
                    totals.bytes >> 20,
                    totals.per_rule.iter().sum::<u64>()
                ));
            }
        }
    });
    if let Some(bar) = &progress {
        bar.finish_and_clear();
    }
    // Correlations: evaluated once all base-rule matches are in, so the
    // result cannot depend on file order, batch split or thread count.
    let mut corr_problems = Vec::new();
    let correlation::Evaluated {
        fired,
        spill_failures,
        spilled,
    } = pool.install(|| correlation::evaluate(&plan, corr_events, &mut corr_problems));
    io_errors += spill_failures;
    for p in &corr_problems {
        eprintln!("error: {p}");
    }
    let alert_count: u64 = fired.iter().map(|f| f.alerts.len() as u64).sum();
    let mut all_alerts: Vec<(usize, &sigil_runtime::correlate::Alert)> = fired
        .iter()
        .flat_map(|f| f.alerts.iter().map(move |a| (f.correlation, a)))
        .collect();
    all_alerts.sort_by_key(|a| (a.1.end_ms, a.0));
    if !broken_pipe {
        // Alerts list their records (thousands of alerts of dozens of
        // records each took 25 ms to format on one thread, while the pool
        // was idle): formatted in parallel, written in order.
        let texts: Vec<String> = pool.install(|| {
            all_alerts
                .par_chunks(64)
                .map(|chunk| {
                    let mut text = String::new();
                    for (ci, a) in chunk {
                        match format {
                            ScanFormat::Jsonl => {
                                correlation::alert_json(&plan, *ci, a, &shared.files, &mut text)
                            }
                            ScanFormat::Table => {
                                let (time, title, level, what) =
                                    correlation::alert_row(&plan, *ci, a);
                                text.push_str(&format!(
                                    "{:<20}  {:<40}  {:<13}  {}\n",
                                    truncate(&time, 20),
                                    truncate(&title, 40),
                                    level,
                                    what
                                ));
                            }
                            ScanFormat::Count => {}
                        }
                    }
                    text
                })
                .collect()
        });
        for text in texts {
            if out.write_all(text.as_bytes()).is_err() {
                // A closed stdout ends output quietly; the summary still goes to stderr.
                break;
            }
        }
    }
    let matches: u64 = totals.per_rule.iter().sum::<u64>() + alert_count;
    if format == ScanFormat::Count {
        for f in &fired {
            if !f.alerts.is_empty() {
                let info = &plan.correlations[f.correlation].info;
                let _ = writeln!(
                    out,
                    "{}\t{}\t{}",
                    f.alerts.len(),
                    info.id.as_deref().unwrap_or("-"),
                    info.title
                );
            }
        }
        let rows = busiest(&totals.per_rule);
        for (c, i) in rows {
            let info = program.info(i);
            let _ = writeln!(
                out,
                "{c}\t{}\t{}",
                info.id.as_deref().unwrap_or("-"),
                info.title
            );
        }
    }
    // A closed stdout (`| head`) is a clean end, not an error.
    let _ = out.flush();
    if damage_lines > 1000 {
        eprintln!(
            "warning: {} more damaged inputs not listed",
            damage_lines - 1000
        );
    }
    let secs = started.elapsed().as_secs_f64().max(1e-9);
    if !opts.quiet {
        eprintln!(
            "sigil: {} files, {} records, {:.1} MB, {} damaged, {} skipped files, {} detections by {} of {} rules in {:.2}s ({:.0} records/s, {:.1} MB/s)",
            discovery.sources.len(),
            totals.records,
            totals.bytes as f64 / 1e6,
            totals.damaged,
            discovery.skipped.len(),
            matches,
            totals.per_rule.iter().filter(|c| **c > 0).count(),
            program.rule_count(),
            secs,
            totals.records as f64 / secs,
            totals.bytes as f64 / 1e6 / secs
        );
        if !plan.is_empty() {
            eprintln!(
                "  correlations: {} alerts from {} correlation rules; {} base matches without a usable eventTime and {} without a group-by field were not counted",
                alert_count,
                plan.correlations.len(),
                totals.dropped.no_time,
                totals.dropped.no_group
            );
            if spilled.runs > 0 {
                eprintln!(
                    "  correlations: window events passed --correlation-memory ({:.1} MiB): {} sorted runs, {:.1} MB, spilled to temporary files and merged",
                    opts.correlation_memory as f64 / f64::from(1 << 20),
                    spilled.runs,
                    spilled.bytes as f64 / 1e6
                );
            }
        }
        if format != ScanFormat::Count {
            let rows = busiest(&totals.per_rule);
            for (c, i) in rows.iter().take(50) {
                eprintln!("  {c:>9}  {}", program.info(*i).title);
            }
        }
    }
    eprintln!(
        "RESULT tool=sigil rules={} events={} matches={} seconds={:.3} eps={:.0} mbps={:.1} damaged={}",
        program.rule_count(),
        totals.records,
        matches,
        secs,
        totals.records as f64 / secs,
        totals.bytes as f64 / 1e6 / secs,
        totals.damaged
    );
    if io_errors > 0 {
        EXIT_USAGE
    } else if opts.fail_on_match && matches > 0 {
        EXIT_FINDINGS
    } else {
        EXIT_CLEAN
    }
}

fn process_source<'s>(
    si: usize,
    src: &InputSource,
    shared: &'s Shared<'s>,
    slots: &'s Slots,
    tx: &mpsc::Sender<Msg>,
    scope: &rayon::Scope<'s>,
) {
    let mut reader = match RecordReader::open(src) {
        Ok(r) => r
            .line_records(src.is_line_delimited())
            .container_records(true)
            .buffers_from(Arc::clone(&shared.buffers)),
        Err(damage) => {
            let _ = tx.send(Msg::OpenFailed { source: si, damage });
            return;
        }
    };
    let mut seq = 0;
    loop {
        // The writer frees the slot once the batch is written: at most
        // `slots` batches are read, in flight or waiting to be written, so
        // memory stays flat whatever the input size.
        slots.acquire(si);
        let Some(batch) = reader.next_batch(BATCH_BYTES) else {
            slots.release(si);
            break;
        };
        let tx = tx.clone();
        let this = seq;
        let run = move || {
            let (out, stats, damage) = process_batch(si, batch, shared);
            let _ = tx.send(Msg::Batch {
                source: si,
                seq: this,
                out,
                stats,
                damage,
            });
        };
        if seq == 0 && reader.is_finished() {
            // A file read whole in one batch is matched by the thread that
            // read it, while its bytes are in this core's cache: the other
            // readers keep the other cores busy with other files. Handing
            // each of an S3 tree's 1,008 files to the pool cost 4 % on two
            // cores. A larger file's batches go to the pool, so that every
            // core works on it.
            run();
        } else {
            scope.spawn(move |_| run());
        }
        seq += 1;
    }
    let _ = tx.send(Msg::Done {
        source: si,
        batches: seq,
    });
}

fn process_batch(si: usize, batch: Batch, shared: &Shared<'_>) -> (Vec<u8>, Stats, Vec<Damage>) {
    let program = shared.program;
    let pooled = shared.matchers.lock().ok().and_then(|mut m| m.pop());
    let mut matcher = pooled.unwrap_or_else(|| program.matcher().assume_valid_json());
    let mut stats = Stats {
        per_rule: vec![0; program.rule_count()],
        bytes: batch.bytes_in,
        ..Stats::default()
    };
    let mut damage = batch.damage;
    stats.damaged = damage.len() as u64;
    let mut out = shared.buffers.take(batch.data.len() + batch.data.len() / 4);
    let mut hits = Vec::new();
    let file = &shared.files[si];
    let mut emit = Emit {
        si,
        shared,
        file,
        out: &mut out,
        stats: &mut stats,
    };
    for rec in &batch.records {
        let Some(bytes) = batch.data.get(rec.start..rec.end) else {
            continue;
        };
        let verdict = if rec.checked {
            matcher.matches(bytes, &mut hits)
        } else {
            matcher.matches_unchecked(bytes, &mut hits)
        };
        // A record taken unchecked that is not one valid object is read
        // again as the strict reader reads it, for its exact damage and any
        // records it holds (inside an envelope, with the rest of the input,
        // which supersedes this batch's later records).
        let (records, rest_superseded) = match verdict {
            Ok(text) => {
                emit.record(rec, bytes, text, &hits, &matcher);
                continue;
            }
            Err(_) if !rec.checked => {
                let before = damage.len() as u64;
                let batch = (&batch.data[..], batch.max_record_bytes);
                let again = rescan_unchecked(&shared.names[si], batch, rec, &mut damage);
                emit.stats.damaged = emit.stats.damaged + damage.len() as u64 - before;
                again
            }
            Err(e) => {
                damage.push(emit.invalid(rec, e));
                continue;
            }
        };
        for sub in &records {
            let Some(bytes) = batch.data.get(sub.start..sub.end) else {
                continue;
            };
            match matcher.matches(bytes, &mut hits) {
                Ok(text) => emit.record(sub, bytes, text, &hits, &matcher),
                Err(e) => damage.push(emit.invalid(sub, e)),
            }
        }
        if rest_superseded {
            break;
        }
    }
    if damage
        .windows(2)
        .any(|w| (w[0].line, w[0].offset) > (w[1].line, w[1].offset))
    {
        damage.sort_by_key(|d| (d.line, d.offset));
    }
    shared.buffers.give(batch.data);
    if let Ok(mut pool) = shared.matchers.lock() {
        pool.push(matcher);
    }
    (out, stats, damage)
}

/// Appends `n` in decimal: `write!` for the two numbers of each detection
/// cost 1 % of a scan.
fn push_decimal(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    loop {
        start -= 1;
        digits[start] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[start..]);
}

/// (detections, rule) for rules that detected anything, most first.
fn busiest(per_rule: &[u64]) -> Vec<(u64, usize)> {
    let mut rows: Vec<(u64, usize)> = per_rule
        .iter()
        .copied()
        .enumerate()
        .filter(|(_, c)| *c > 0)
        .map(|(i, c)| (c, i))
        .collect();
    rows.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    rows
}

fn truncate(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(width.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

/// Writes one batch's detections and tallies.
struct Emit<'a, 's> {
    si: usize,
    shared: &'a Shared<'s>,
    file: &'a str,
    out: &'a mut Vec<u8>,
    stats: &'a mut Stats,
}

impl Emit<'_, '_> {
    /// A record the matcher could not read: damage, counted.
    fn invalid(&mut self, rec: &RecordSpan, e: JsonError) -> Damage {
        self.stats.damaged += 1;
        Damage {
            file: self.shared.names[self.si].clone(),
            offset: rec.offset + e.offset as u64,
            line: rec.line,
            record: Some(rec.index),
            reason: format!(
                "invalid JSON at byte {} of the record: {}; skipped",
                e.offset, e.reason
            ),
        }
    }

    /// A record read: its detections, and the events it feeds to
    /// correlations. `text`: the record as text, from the matcher (which
    /// read it whenever it found a hit).
    fn record(
        &mut self,
        rec: &RecordSpan,
        bytes: &[u8],
        text: Option<&str>,
        hits: &[usize],
        matcher: &Matcher<'_>,
    ) {
        let shared = self.shared;
        let program = shared.program;
        let stats = &mut *self.stats;
        let out = &mut *self.out;
        stats.records += 1;
        for &r in hits {
            for feed in &shared.plan.by_rule[r] {
                let Some(text) = text else {
                    stats.dropped.no_time += 1;
                    continue;
                };
                let at = RecordRef {
                    source: self.si,
                    record: rec.index,
                    line: rec.line,
                };
                correlation::event(
                    feed,
                    matcher,
                    text,
                    at,
                    &mut stats.dropped,
                    &mut stats.events,
                );
            }
            if !program.standalone(r) {
                // Only feeds correlations (`generate: false`).
                continue;
            }
            stats.per_rule[r] += 1;
            match shared.format {
                ScanFormat::Jsonl => {
                    out.extend_from_slice(b"{\"rule\":");
                    out.extend_from_slice(shared.rule_json[r].as_bytes());
                    out.extend_from_slice(b",\"source\":{\"file\":\"");
                    out.extend_from_slice(self.file.as_bytes());
                    out.extend_from_slice(b"\",\"record\":");
                    push_decimal(out, rec.index);
                    out.extend_from_slice(b",\"line\":");
                    push_decimal(out, rec.line);
                    out.extend_from_slice(b"},\"event\":");
                    match &shared.projection {
                        Some(p) => out.extend_from_slice(p.json(bytes).as_bytes()),
                        // The record is copied as it was, not re-serialised;
                        // only line breaks between tokens are removed so each
                        // detection stays on one line.
                        None if memchr::memchr2(b'\n', b'\r', bytes).is_some() => {
                            out.extend_from_slice(sigil_runtime::json::compact(bytes).as_bytes())
                        }
                        None => out.extend_from_slice(bytes),
                    }
                    out.extend_from_slice(b"}\n");
                }
                ScanFormat::Table => {
                    let t = shared.table.texts(bytes);
                    let get = |i: usize| t.get(i).cloned().flatten().unwrap_or_else(|| "-".into());
                    let info = program.info(r);
                    let line = format!(
                        "{:<20}  {:<40}  {:<13}  {:<50}  {:<15}  {}\n",
                        truncate(&get(0), 20),
                        truncate(&info.title, 40),
                        info.level.as_deref().unwrap_or("-"),
                        truncate(&get(1), 50),
                        truncate(&get(2), 15),
                        get(3)
                    );
                    out.extend_from_slice(line.as_bytes());
                }
                ScanFormat::Count => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::push_decimal;

    #[test]
    fn decimals_are_written_as_format_writes_them() {
        for n in [
            0,
            7,
            9,
            10,
            99,
            100,
            1_234_567,
            u64::from(u32::MAX),
            u64::MAX,
        ] {
            let mut out = b"x".to_vec();
            push_decimal(&mut out, n);
            assert_eq!(out, format!("x{n}").into_bytes());
        }
    }
}
