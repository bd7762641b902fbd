"""The embedded Voi provider: a deterministic simulated city served over HTTP, which knows its ground truth.

From the city to the wire, one concept per module:

- `city`: the simulated cities (zone metadata, areas and parking spots); `ids`: deterministic ids from the seed.
- `simulation`: every vehicle's timeline (events, trips, state intervals), the ground truth of a zone.
- `faults`: what the provider can be told to get wrong; `record_faults`: per-record faults and the damaged copies.
- `index`: a zone's fleet indexed for serving; `service`: the zones at the clock's time and the rules every API
  shares; `mds`, `gbfs` (3.0, per zone), `gbfs_v2` (2.3, account-wide), `zone_api`: each API's payloads;
  `legacy_mds`: MDS 1.2 and 0.4 on the legacy host, the 2.0 records said in the older versions' words.
- `app`: the HTTP face (auth, versions, rate limit, transport faults); `hostile`: faults of a provider that does not
  play fair; `server`: serving on the loopback interface; `clock`: the provider's "now".
- `truth`: the ground truth as Parquet; `cli`: `serve` and `truth` on the command line.

It imports nothing of the pipeline it feeds.
"""
