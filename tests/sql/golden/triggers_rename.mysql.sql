-- trigger dualwrite_users-display-name_bi (BEFORE INSERT ON users)
CREATE TRIGGER `app`.`dualwrite_users-display-name_bi` BEFORE INSERT ON `app`.`users` FOR EACH ROW BEGIN
  /* dualwrite:users-display-name:0c2589d63b42af5a */
  DECLARE v_old_side BOOLEAN DEFAULT FALSE;
  DECLARE v_new_side BOOLEAN DEFAULT FALSE;
  DECLARE v_new_wins BOOLEAN DEFAULT FALSE;
  DECLARE v_step VARCHAR(32) DEFAULT 'stage lookup';
  DECLARE EXIT HANDLER FOR SQLEXCEPTION
  BEGIN
    DECLARE v_msg TEXT;
    GET DIAGNOSTICS CONDITION 1 v_msg = MESSAGE_TEXT;
    SET v_msg = LEFT(CONCAT('dualwrite ', 'users-display-name', ': the ', v_step,
                            ' failed on table ', 'users', ': ', v_msg), 128);
    RESIGNAL SET MESSAGE_TEXT = v_msg;
  END;
  SET v_old_side = NEW.`full_name` IS NOT NULL;
  SET v_new_side = NEW.`display_name` IS NOT NULL;
  IF v_old_side AND v_new_side THEN
    SET v_new_wins = COALESCE((SELECT m.stage IN ('live', 'rampdown', 'complete', 'contract') FROM `app`.`dualwrite_migrations` m WHERE m.migration_key = 'users-display-name'), FALSE);
  END IF;
  IF v_old_side AND NOT v_new_wins THEN
    SET v_step = 'forward transform';
    SET NEW.`display_name` = CASE WHEN NEW.`full_name` IS NULL THEN NULL ELSE (NEW.`full_name`) END;
  ELSEIF v_new_side THEN
    SET v_step = 'backward transform';
    SET NEW.`full_name` = CASE WHEN NEW.`display_name` IS NULL THEN NULL ELSE (NEW.`display_name`) END;
  END IF;
END;
-- drop: DROP TRIGGER IF EXISTS `app`.`dualwrite_users-display-name_bi`
-- trigger dualwrite_users-display-name_bu (BEFORE UPDATE ON users)
CREATE TRIGGER `app`.`dualwrite_users-display-name_bu` BEFORE UPDATE ON `app`.`users` FOR EACH ROW BEGIN
  /* dualwrite:users-display-name:a87e82381e7e86da */
  DECLARE v_old_side BOOLEAN DEFAULT FALSE;
  DECLARE v_new_side BOOLEAN DEFAULT FALSE;
  DECLARE v_new_wins BOOLEAN DEFAULT FALSE;
  DECLARE v_step VARCHAR(32) DEFAULT 'stage lookup';
  DECLARE EXIT HANDLER FOR SQLEXCEPTION
  BEGIN
    DECLARE v_msg TEXT;
    GET DIAGNOSTICS CONDITION 1 v_msg = MESSAGE_TEXT;
    SET v_msg = LEFT(CONCAT('dualwrite ', 'users-display-name', ': the ', v_step,
                            ' failed on table ', 'users', ': ', v_msg), 128);
    RESIGNAL SET MESSAGE_TEXT = v_msg;
  END;
  SET v_old_side = NOT (NEW.`full_name` <=> OLD.`full_name`);
  SET v_new_side = NOT (NEW.`display_name` <=> OLD.`display_name`);
  IF v_old_side AND v_new_side THEN
    SET v_new_wins = COALESCE((SELECT m.stage IN ('live', 'rampdown', 'complete', 'contract') FROM `app`.`dualwrite_migrations` m WHERE m.migration_key = 'users-display-name'), FALSE);
  END IF;
  IF v_old_side AND NOT v_new_wins THEN
    SET v_step = 'forward transform';
    SET NEW.`display_name` = CASE WHEN NEW.`full_name` IS NULL THEN NULL ELSE (NEW.`full_name`) END;
  ELSEIF v_new_side THEN
    SET v_step = 'backward transform';
    SET NEW.`full_name` = CASE WHEN NEW.`display_name` IS NULL THEN NULL ELSE (NEW.`display_name`) END;
  END IF;
END;
-- drop: DROP TRIGGER IF EXISTS `app`.`dualwrite_users-display-name_bu`
