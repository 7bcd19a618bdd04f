/*
 * iscsi-load: a small load generator for the benches (npm run bench:target, bench:cow), the
 * counterpart of libiscsi's iscsi-perf, which only reads: READ(16) or WRITE(16) of a fixed size at
 * a fixed queue depth over one libiscsi session, sequential (optionally with a step between
 * requests) or random, for a time or a number of requests. Written in C so that the client costs
 * the two cores of the bench machine as little as iscsi-perf does, whichever target it drives.
 *
 *   iscsi-load [-w] [-r] [-m DEPTH] [-b BLOCKS] [-S STEP_BLOCKS] [-o OFFSET_BLOCKS]
 *              [-l LIMIT_BLOCKS] [-t SECONDS] [-c COUNT] [-i INITIATOR] URL
 *
 * -w writes (a pattern byte) instead of reading; -r random (aligned to BLOCKS) instead of
 * sequential; -S the distance between consecutive sequential requests (default BLOCKS); -o where
 * the walk starts (and the random range); -l the random range's length (default: to the end);
 * -t stop issuing after SECONDS (default 5); -c stop after COUNT requests (a sequential walk
 * also stops at the end of the LUN instead of wrapping); -i the initiator name (several at once
 * need names of their own: one name and ISID is one session). Prints one
 * line: `ios N seconds S iops I mibps M lat_p50_us A lat_p99_us B lat_max_us C`; exit status 1
 * on any failed command.
 */
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <iscsi/iscsi.h>
#include <iscsi/scsi-lowlevel.h>

#define USAGE "usage: iscsi-load [-w] [-r] [-m DEPTH] [-b BLOCKS] [-S STEP] [-o OFFSET] [-l LIMIT] [-t SECONDS] [-c COUNT] [-i INITIATOR] URL\n"

struct load {
  struct iscsi_context *iscsi;
  int lun;
  int write;
  int random;
  uint32_t blocks;
  uint32_t block_size;
  uint64_t capacity;  /* blocks */
  uint64_t offset;    /* where the walk starts, and the random range */
  uint64_t limit;     /* the random range's length */
  uint64_t step;
  uint64_t next_lba;
  uint64_t issued;
  uint64_t done;
  uint64_t count;     /* 0 = no limit */
  double deadline;
  int in_flight;
  int failed;
  unsigned char *data;
  double *lat;        /* per request, microseconds */
  size_t lat_len;
  size_t lat_cap;
};

struct request {
  struct load *load;
  double start;
};

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void issue(struct load *l);

static void completed(struct iscsi_context *iscsi, int status, void *command_data, void *private_data) {
  struct request *r = private_data;
  struct load *l = r->load;
  struct scsi_task *task = command_data;
  (void)iscsi;
  if (status != SCSI_STATUS_GOOD) {
    fprintf(stderr, "iscsi-load: %s failed: %s\n", l->write ? "WRITE(16)" : "READ(16)", iscsi_get_error(l->iscsi));
    l->failed = 1;
  }
  if (l->lat_len == l->lat_cap) {
    l->lat_cap = l->lat_cap ? l->lat_cap * 2 : 65536;
    l->lat = realloc(l->lat, l->lat_cap * sizeof(double));
  }
  l->lat[l->lat_len++] = (now() - r->start) * 1e6;
  free(r);
  if (task) scsi_free_scsi_task(task);
  l->in_flight--;
  l->done++;
  issue(l);
}

/* Issues the next request unless time, count or (sequential with a count) the LUN has run out. */
static void issue(struct load *l) {
  if (l->failed || now() >= l->deadline || (l->count && l->issued >= l->count)) return;
  uint64_t lba;
  if (l->random) {
    uint64_t slots = l->limit / l->blocks;
    lba = l->offset + ((((uint64_t)random() << 31) ^ (uint64_t)random()) % slots) * l->blocks;
  } else {
    if (l->next_lba + l->blocks > l->capacity) {
      if (l->count) return;
      l->next_lba = l->offset;
    }
    lba = l->next_lba;
    l->next_lba += l->step;
  }
  struct request *r = malloc(sizeof *r);
  r->load = l;
  r->start = now();
  uint32_t bytes = l->blocks * l->block_size;
  struct scsi_task *t = l->write
      ? iscsi_write16_task(l->iscsi, l->lun, lba, l->data, bytes, l->block_size, 0, 0, 0, 0, 0, completed, r)
      : iscsi_read16_task(l->iscsi, l->lun, lba, bytes, l->block_size, 0, 0, 0, 0, 0, completed, r);
  if (t == NULL) {
    fprintf(stderr, "iscsi-load: cannot queue a command: %s\n", iscsi_get_error(l->iscsi));
    free(r);
    l->failed = 1;
    return;
  }
  l->issued++;
  l->in_flight++;
}

static int by_value(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double percentile(const double *sorted, size_t n, double p) {
  if (n == 0) return 0;
  size_t k = (size_t)(p * (double)n + 0.999999);
  if (k < 1) k = 1;
  if (k > n) k = n;
  return sorted[k - 1];
}

int main(int argc, char **argv) {
  struct load l;
  memset(&l, 0, sizeof l);
  int depth = 32;
  double seconds = 5;
  uint64_t step = 0, offset = 0, limit = 0;
  const char *initiator = "iqn.2026-11.io.xcopy-agent.bench:iscsi-load";
  l.blocks = 8;
  int c;
  while ((c = getopt(argc, argv, "wrm:b:S:o:l:t:c:i:")) != -1) {
    switch (c) {
      case 'w': l.write = 1; break;
      case 'r': l.random = 1; break;
      case 'm': depth = atoi(optarg); break;
      case 'b': l.blocks = (uint32_t)strtoul(optarg, NULL, 10); break;
      case 'S': step = strtoull(optarg, NULL, 10); break;
      case 'o': offset = strtoull(optarg, NULL, 10); break;
      case 'l': limit = strtoull(optarg, NULL, 10); break;
      case 'i': initiator = optarg; break;
      case 't': seconds = atof(optarg); break;
      case 'c': l.count = strtoull(optarg, NULL, 10); break;
      default:
        fprintf(stderr, USAGE);
        return 2;
    }
  }
  if (optind != argc - 1 || depth < 1 || l.blocks < 1) {
    fprintf(stderr, USAGE);
    return 2;
  }
  l.iscsi = iscsi_create_context(initiator);
  struct iscsi_url *url = l.iscsi ? iscsi_parse_full_url(l.iscsi, argv[optind]) : NULL;
  if (url == NULL) {
    fprintf(stderr, "iscsi-load: bad URL %s: %s\n", argv[optind], l.iscsi ? iscsi_get_error(l.iscsi) : "no context");
    return 2;
  }
  iscsi_set_targetname(l.iscsi, url->target);
  iscsi_set_session_type(l.iscsi, ISCSI_SESSION_NORMAL);
  iscsi_set_header_digest(l.iscsi, ISCSI_HEADER_DIGEST_NONE);
  if (iscsi_full_connect_sync(l.iscsi, url->portal, url->lun) != 0) {
    fprintf(stderr, "iscsi-load: login to %s failed: %s\n", argv[optind], iscsi_get_error(l.iscsi));
    return 1;
  }
  l.lun = url->lun;
  iscsi_destroy_url(url);
  struct scsi_task *cap = iscsi_readcapacity16_sync(l.iscsi, l.lun);
  struct scsi_readcapacity16 *rc = cap && cap->status == SCSI_STATUS_GOOD ? scsi_datain_unmarshall(cap) : NULL;
  if (rc == NULL) {
    fprintf(stderr, "iscsi-load: READ CAPACITY(16) failed: %s\n", iscsi_get_error(l.iscsi));
    return 1;
  }
  l.block_size = rc->block_length;
  l.capacity = rc->returned_lba + 1;
  scsi_free_scsi_task(cap);
  if (offset >= l.capacity || (limit && offset + limit > l.capacity)) {
    fprintf(stderr, "iscsi-load: offset %" PRIu64 " and limit %" PRIu64 " do not fit the LUN's %" PRIu64 " blocks\n", offset, limit, l.capacity);
    return 2;
  }
  l.step = step ? step : l.blocks;
  l.offset = offset;
  l.limit = limit ? limit : l.capacity - offset;
  if (l.limit < l.blocks) {
    fprintf(stderr, "iscsi-load: the range of %" PRIu64 " blocks holds no request of %u\n", l.limit, l.blocks);
    return 2;
  }
  l.next_lba = offset;
  l.data = malloc((size_t)l.blocks * l.block_size);
  memset(l.data, 0x5a, (size_t)l.blocks * l.block_size);
  srandom((unsigned)time(NULL) ^ (unsigned)getpid());

  double t0 = now();
  l.deadline = t0 + seconds;
  for (int i = 0; i < depth; i++) issue(&l);
  while (l.in_flight > 0) {
    struct pollfd pfd = {iscsi_get_fd(l.iscsi), (short)iscsi_which_events(l.iscsi), 0};
    if (poll(&pfd, 1, 1000) < 0) break;
    if (iscsi_service(l.iscsi, pfd.revents) < 0) {
      fprintf(stderr, "iscsi-load: %s\n", iscsi_get_error(l.iscsi));
      return 1;
    }
  }
  double secs = now() - t0;
  qsort(l.lat, l.lat_len, sizeof(double), by_value);
  double bytes = (double)l.done * l.blocks * l.block_size;
  printf("ios %" PRIu64 " seconds %.3f iops %.0f mibps %.1f lat_p50_us %.0f lat_p99_us %.0f lat_max_us %.0f\n", l.done, secs,
         (double)l.done / secs, bytes / 1048576.0 / secs, percentile(l.lat, l.lat_len, 0.5), percentile(l.lat, l.lat_len, 0.99),
         l.lat_len ? l.lat[l.lat_len - 1] : 0.0);
  iscsi_logout_sync(l.iscsi);
  iscsi_destroy_context(l.iscsi);
  return l.failed ? 1 : 0;
}
