-- trigger dualwrite_people-split-name_bi (BEFORE INSERT ON people)
CREATE TRIGGER `app`.`dualwrite_people-split-name_bi` BEFORE INSERT ON `app`.`people` FOR EACH ROW BEGIN
  /* dualwrite:people-split-name:619be8ded578a156 */
  DECLARE v_old_side BOOLEAN DEFAULT FALSE;
  DECLARE v_new_side BOOLEAN DEFAULT FALSE;
  DECLARE v_new_wins BOOLEAN DEFAULT FALSE;
  DECLARE v_step VARCHAR(32) DEFAULT 'stage lookup';
  DECLARE EXIT HANDLER FOR SQLEXCEPTION
  BEGIN
    DECLARE v_msg TEXT;
    GET DIAGNOSTICS CONDITION 1 v_msg = MESSAGE_TEXT;
    SET v_msg = LEFT(CONCAT('dualwrite ', 'people-split-name', ': the ', v_step,
                            ' failed on table ', 'people', ': ', v_msg), 128);
    RESIGNAL SET MESSAGE_TEXT = v_msg;
  END;
  SET v_old_side = NEW.`full_name` IS NOT NULL;
  SET v_new_side = NEW.`first_name` IS NOT NULL OR NEW.`last_name` IS NOT NULL;
  IF v_old_side AND v_new_side THEN
    SET v_new_wins = COALESCE((SELECT m.stage IN ('live', 'rampdown', 'complete', 'contract') FROM `app`.`dualwrite_migrations` m WHERE m.migration_key = 'people-split-name'), FALSE);
  END IF;
  IF v_old_side AND NOT v_new_wins THEN
    SET v_step = 'forward transform';
    SET NEW.`first_name` = CASE WHEN NEW.`full_name` IS NULL THEN NULL ELSE (CASE WHEN INSTR(NEW.`full_name`, ' ') > 0 THEN substr(NEW.`full_name`, 1, INSTR(NEW.`full_name`, ' ') - 1) ELSE NEW.`full_name` END) END;
    SET NEW.`last_name` = CASE WHEN NEW.`full_name` IS NULL THEN NULL ELSE (CASE WHEN INSTR(NEW.`full_name`, ' ') > 0 THEN substr(NEW.`full_name`, INSTR(NEW.`full_name`, ' ') + 1) ELSE '' END) END;
  ELSEIF v_new_side THEN
    SET v_step = 'backward transform';
    SET NEW.`full_name` = CASE WHEN NEW.`first_name` IS NULL AND NEW.`last_name` IS NULL THEN NULL ELSE (RTRIM(CONCAT(NEW.`first_name`, ' ', COALESCE(NEW.`last_name`, '')))) END;
  END IF;
END;
-- drop: DROP TRIGGER IF EXISTS `app`.`dualwrite_people-split-name_bi`
-- trigger dualwrite_people-split-name_bu (BEFORE UPDATE ON people)
CREATE TRIGGER `app`.`dualwrite_people-split-name_bu` BEFORE UPDATE ON `app`.`people` FOR EACH ROW BEGIN
  /* dualwrite:people-split-name:9ed61bd249f5c9fe */
  DECLARE v_old_side BOOLEAN DEFAULT FALSE;
  DECLARE v_new_side BOOLEAN DEFAULT FALSE;
  DECLARE v_new_wins BOOLEAN DEFAULT FALSE;
  DECLARE v_step VARCHAR(32) DEFAULT 'stage lookup';
  DECLARE EXIT HANDLER FOR SQLEXCEPTION
  BEGIN
    DECLARE v_msg TEXT;
    GET DIAGNOSTICS CONDITION 1 v_msg = MESSAGE_TEXT;
    SET v_msg = LEFT(CONCAT('dualwrite ', 'people-split-name', ': the ', v_step,
                            ' failed on table ', 'people', ': ', v_msg), 128);
    RESIGNAL SET MESSAGE_TEXT = v_msg;
  END;
  SET v_old_side = NOT (NEW.`full_name` <=> OLD.`full_name`);
  SET v_new_side = NOT (NEW.`first_name` <=> OLD.`first_name`) OR NOT (NEW.`last_name` <=> OLD.`last_name`);
  IF v_old_side AND v_new_side THEN
    SET v_new_wins = COALESCE((SELECT m.stage IN ('live', 'rampdown', 'complete', 'contract') FROM `app`.`dualwrite_migrations` m WHERE m.migration_key = 'people-split-name'), FALSE);
  END IF;
  IF v_old_side AND NOT v_new_wins THEN
    SET v_step = 'forward transform';
    SET NEW.`first_name` = CASE WHEN NEW.`full_name` IS NULL THEN NULL ELSE (CASE WHEN INSTR(NEW.`full_name`, ' ') > 0 THEN substr(NEW.`full_name`, 1, INSTR(NEW.`full_name`, ' ') - 1) ELSE NEW.`full_name` END) END;
    SET NEW.`last_name` = CASE WHEN NEW.`full_name` IS NULL THEN NULL ELSE (CASE WHEN INSTR(NEW.`full_name`, ' ') > 0 THEN substr(NEW.`full_name`, INSTR(NEW.`full_name`, ' ') + 1) ELSE '' END) END;
  ELSEIF v_new_side THEN
    SET v_step = 'backward transform';
    SET NEW.`full_name` = CASE WHEN NEW.`first_name` IS NULL AND NEW.`last_name` IS NULL THEN NULL ELSE (RTRIM(CONCAT(NEW.`first_name`, ' ', COALESCE(NEW.`last_name`, '')))) END;
  END IF;
END;
-- drop: DROP TRIGGER IF EXISTS `app`.`dualwrite_people-split-name_bu`
