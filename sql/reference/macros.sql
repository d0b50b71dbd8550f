-- R1: the Paris civil date of an instant (epoch microseconds, UTC), given the row of
-- ref.paris_offsets of its UTC year: the summer offset inside [summer_start, summer_end), the
-- standard one outside. Integer arithmetic, exact, much cheaper than a per-row time-zone
-- conversion (tests/test_reference.py checks it against zoneinfo around every change).
CREATE OR REPLACE MACRO ref.paris_date(utc_us, summer_start_us, summer_end_us,
                                       standard_offset_us, summer_offset_us) AS
    CAST(make_timestamp(utc_us + CASE WHEN utc_us >= summer_start_us AND utc_us < summer_end_us
                                      THEN summer_offset_us ELSE standard_offset_us END) AS DATE);
