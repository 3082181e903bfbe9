-- trigger dualwrite_orders-cents_bi (BEFORE INSERT ON orders)
CREATE TRIGGER `app`.`dualwrite_orders-cents_bi` BEFORE INSERT ON `app`.`orders` FOR EACH ROW BEGIN
  /* dualwrite:orders-cents:86532eb6d5b0fe92 */
  IF (NEW.`price` IS NOT NULL) AND (NEW.`price_cents` IS NOT NULL) THEN
    IF COALESCE((SELECT m.stage IN ('live', 'rampdown', 'complete', 'contract') FROM `app`.`dualwrite_migrations` m WHERE m.migration_key = 'orders-cents'), FALSE) THEN
      BEGIN
        DECLARE EXIT HANDLER FOR SQLEXCEPTION
        BEGIN
          DECLARE v_msg TEXT;
          GET DIAGNOSTICS CONDITION 1 v_msg = MESSAGE_TEXT;
          SET v_msg = LEFT(CONCAT('dualwrite orders-cents: the backward transform failed on table orders: ', v_msg), 128);
          RESIGNAL SET MESSAGE_TEXT = v_msg;
        END;
        SET NEW.`price` = CASE WHEN NEW.`price_cents` IS NULL THEN NULL ELSE (NEW.`price_cents` / 100.0) END;
      END;
    ELSE
      BEGIN
        DECLARE EXIT HANDLER FOR SQLEXCEPTION
        BEGIN
          DECLARE v_msg TEXT;
          GET DIAGNOSTICS CONDITION 1 v_msg = MESSAGE_TEXT;
          SET v_msg = LEFT(CONCAT('dualwrite orders-cents: the forward transform failed on table orders: ', v_msg), 128);
          RESIGNAL SET MESSAGE_TEXT = v_msg;
        END;
        SET NEW.`price_cents` = CASE WHEN NEW.`price` IS NULL THEN NULL ELSE (CAST(ROUND(NEW.`price` * 100) AS SIGNED)) END;
      END;
    END IF;
  ELSEIF NEW.`price` IS NOT NULL THEN
    BEGIN
      DECLARE EXIT HANDLER FOR SQLEXCEPTION
      BEGIN
        DECLARE v_msg TEXT;
        GET DIAGNOSTICS CONDITION 1 v_msg = MESSAGE_TEXT;
        SET v_msg = LEFT(CONCAT('dualwrite orders-cents: the forward transform failed on table orders: ', v_msg), 128);
        RESIGNAL SET MESSAGE_TEXT = v_msg;
      END;
      SET NEW.`price_cents` = CASE WHEN NEW.`price` IS NULL THEN NULL ELSE (CAST(ROUND(NEW.`price` * 100) AS SIGNED)) END;
    END;
  ELSEIF NEW.`price_cents` IS NOT NULL THEN
    BEGIN
      DECLARE EXIT HANDLER FOR SQLEXCEPTION
      BEGIN
        DECLARE v_msg TEXT;
        GET DIAGNOSTICS CONDITION 1 v_msg = MESSAGE_TEXT;
        SET v_msg = LEFT(CONCAT('dualwrite orders-cents: the backward transform failed on table orders: ', v_msg), 128);
        RESIGNAL SET MESSAGE_TEXT = v_msg;
      END;
      IF (NOT (NEW.`price_cents` <=> CASE WHEN NEW.`price` IS NULL THEN NULL ELSE (CAST(ROUND(NEW.`price` * 100) AS SIGNED)) END)) THEN
        SET NEW.`price` = CASE WHEN NEW.`price_cents` IS NULL THEN NULL ELSE (NEW.`price_cents` / 100.0) END;
      END IF;
    END;
  END IF;
END;
-- drop: DROP TRIGGER IF EXISTS `app`.`dualwrite_orders-cents_bi`
-- trigger dualwrite_orders-cents_bu (BEFORE UPDATE ON orders)
CREATE TRIGGER `app`.`dualwrite_orders-cents_bu` BEFORE UPDATE ON `app`.`orders` FOR EACH ROW BEGIN
  /* dualwrite:orders-cents:aa4384253dd7195c */
  IF (NOT (NEW.`price` <=> OLD.`price`)) AND (NOT (NEW.`price_cents` <=> OLD.`price_cents`)) THEN
    IF COALESCE((SELECT m.stage IN ('live', 'rampdown', 'complete', 'contract') FROM `app`.`dualwrite_migrations` m WHERE m.migration_key = 'orders-cents'), FALSE) THEN
      BEGIN
        DECLARE EXIT HANDLER FOR SQLEXCEPTION
        BEGIN
          DECLARE v_msg TEXT;
          GET DIAGNOSTICS CONDITION 1 v_msg = MESSAGE_TEXT;
          SET v_msg = LEFT(CONCAT('dualwrite orders-cents: the backward transform failed on table orders: ', v_msg), 128);
          RESIGNAL SET MESSAGE_TEXT = v_msg;
        END;
        SET NEW.`price` = CASE WHEN NEW.`price_cents` IS NULL THEN NULL ELSE (NEW.`price_cents` / 100.0) END;
      END;
    ELSE
      BEGIN
        DECLARE EXIT HANDLER FOR SQLEXCEPTION
        BEGIN
          DECLARE v_msg TEXT;
          GET DIAGNOSTICS CONDITION 1 v_msg = MESSAGE_TEXT;
          SET v_msg = LEFT(CONCAT('dualwrite orders-cents: the forward transform failed on table orders: ', v_msg), 128);
          RESIGNAL SET MESSAGE_TEXT = v_msg;
        END;
        SET NEW.`price_cents` = CASE WHEN NEW.`price` IS NULL THEN NULL ELSE (CAST(ROUND(NEW.`price` * 100) AS SIGNED)) END;
      END;
    END IF;
  ELSEIF NOT (NEW.`price` <=> OLD.`price`) THEN
    BEGIN
      DECLARE EXIT HANDLER FOR SQLEXCEPTION
      BEGIN
        DECLARE v_msg TEXT;
        GET DIAGNOSTICS CONDITION 1 v_msg = MESSAGE_TEXT;
        SET v_msg = LEFT(CONCAT('dualwrite orders-cents: the forward transform failed on table orders: ', v_msg), 128);
        RESIGNAL SET MESSAGE_TEXT = v_msg;
      END;
      SET NEW.`price_cents` = CASE WHEN NEW.`price` IS NULL THEN NULL ELSE (CAST(ROUND(NEW.`price` * 100) AS SIGNED)) END;
    END;
  ELSEIF NOT (NEW.`price_cents` <=> OLD.`price_cents`) THEN
    BEGIN
      DECLARE EXIT HANDLER FOR SQLEXCEPTION
      BEGIN
        DECLARE v_msg TEXT;
        GET DIAGNOSTICS CONDITION 1 v_msg = MESSAGE_TEXT;
        SET v_msg = LEFT(CONCAT('dualwrite orders-cents: the backward transform failed on table orders: ', v_msg), 128);
        RESIGNAL SET MESSAGE_TEXT = v_msg;
      END;
      IF (NOT (NEW.`price_cents` <=> CASE WHEN NEW.`price` IS NULL THEN NULL ELSE (CAST(ROUND(NEW.`price` * 100) AS SIGNED)) END)) THEN
        SET NEW.`price` = CASE WHEN NEW.`price_cents` IS NULL THEN NULL ELSE (NEW.`price_cents` / 100.0) END;
      END IF;
    END;
  END IF;
END;
-- drop: DROP TRIGGER IF EXISTS `app`.`dualwrite_orders-cents_bu`
