-- trigger dualwrite_orders-cents_bi (BEFORE INSERT ON orders)
CREATE TRIGGER `app`.`dualwrite_orders-cents_bi` BEFORE INSERT ON `app`.`orders` FOR EACH ROW BEGIN
  /* dualwrite:orders-cents:5f0816b3335e791f */
  DECLARE v_old_side BOOLEAN DEFAULT FALSE;
  DECLARE v_new_side BOOLEAN DEFAULT FALSE;
  DECLARE v_new_wins BOOLEAN DEFAULT FALSE;
  DECLARE v_step VARCHAR(32) DEFAULT 'stage lookup';
  DECLARE EXIT HANDLER FOR SQLEXCEPTION
  BEGIN
    DECLARE v_msg TEXT;
    GET DIAGNOSTICS CONDITION 1 v_msg = MESSAGE_TEXT;
    SET v_msg = LEFT(CONCAT('dualwrite ', 'orders-cents', ': the ', v_step,
                            ' failed on table ', 'orders', ': ', v_msg), 128);
    RESIGNAL SET MESSAGE_TEXT = v_msg;
  END;
  SET v_old_side = NEW.`price` IS NOT NULL;
  SET v_new_side = NEW.`price_cents` IS NOT NULL;
  IF v_old_side AND v_new_side THEN
    SET v_new_wins = COALESCE((SELECT m.stage IN ('live', 'rampdown', 'complete', 'contract') FROM `app`.`dualwrite_migrations` m WHERE m.migration_key = 'orders-cents'), FALSE);
  END IF;
  IF v_old_side AND NOT v_new_wins THEN
    SET v_step = 'forward transform';
    SET NEW.`price_cents` = CASE WHEN NEW.`price` IS NULL THEN NULL ELSE (CAST(ROUND(NEW.`price` * 100) AS SIGNED)) END;
  ELSEIF v_new_side THEN
    SET v_step = 'backward transform';
    SET NEW.`price` = CASE WHEN NEW.`price_cents` IS NULL THEN NULL ELSE (NEW.`price_cents` / 100.0) END;
  END IF;
END;
-- drop: DROP TRIGGER IF EXISTS `app`.`dualwrite_orders-cents_bi`
-- trigger dualwrite_orders-cents_bu (BEFORE UPDATE ON orders)
CREATE TRIGGER `app`.`dualwrite_orders-cents_bu` BEFORE UPDATE ON `app`.`orders` FOR EACH ROW BEGIN
  /* dualwrite:orders-cents:46a577ebeca7e98c */
  DECLARE v_old_side BOOLEAN DEFAULT FALSE;
  DECLARE v_new_side BOOLEAN DEFAULT FALSE;
  DECLARE v_new_wins BOOLEAN DEFAULT FALSE;
  DECLARE v_step VARCHAR(32) DEFAULT 'stage lookup';
  DECLARE EXIT HANDLER FOR SQLEXCEPTION
  BEGIN
    DECLARE v_msg TEXT;
    GET DIAGNOSTICS CONDITION 1 v_msg = MESSAGE_TEXT;
    SET v_msg = LEFT(CONCAT('dualwrite ', 'orders-cents', ': the ', v_step,
                            ' failed on table ', 'orders', ': ', v_msg), 128);
    RESIGNAL SET MESSAGE_TEXT = v_msg;
  END;
  SET v_old_side = NOT (NEW.`price` <=> OLD.`price`);
  SET v_new_side = NOT (NEW.`price_cents` <=> OLD.`price_cents`);
  IF v_old_side AND v_new_side THEN
    SET v_new_wins = COALESCE((SELECT m.stage IN ('live', 'rampdown', 'complete', 'contract') FROM `app`.`dualwrite_migrations` m WHERE m.migration_key = 'orders-cents'), FALSE);
  END IF;
  IF v_old_side AND NOT v_new_wins THEN
    SET v_step = 'forward transform';
    SET NEW.`price_cents` = CASE WHEN NEW.`price` IS NULL THEN NULL ELSE (CAST(ROUND(NEW.`price` * 100) AS SIGNED)) END;
  ELSEIF v_new_side THEN
    SET v_step = 'backward transform';
    SET NEW.`price` = CASE WHEN NEW.`price_cents` IS NULL THEN NULL ELSE (NEW.`price_cents` / 100.0) END;
  END IF;
END;
-- drop: DROP TRIGGER IF EXISTS `app`.`dualwrite_orders-cents_bu`
